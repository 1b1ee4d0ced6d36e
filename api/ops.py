"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import threading
import time
from collections import Counter

from flask import Flask, Response, current_app, g, request

from api.auth import check_reader
from api.common import Blueprint, registry, respond
from api.errors import problem

blp = Blueprint("ops", __name__, description="Health and metrics")


class RequestMetrics:
    """Counts and time of requests served by this process."""

    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.buckets: Counter[float] = Counter()
        self.seconds = 0.0
        self.count = 0

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(method, endpoint, status)] += 1
            self.seconds += seconds
            self.count += 1
            for bound in self.BUCKETS:
                if seconds <= bound:
                    self.buckets[bound] += 1

    def lines(self) -> list[str]:
        with self.lock:
            out = ["# TYPE registry_http_requests_total counter"]
            for (method, endpoint, status), n in sorted(self.requests.items()):
                out.append(
                    f'registry_http_requests_total{{method="{method}",endpoint="{endpoint}",status="{status}"}} {n}')
            out.append("# TYPE registry_http_request_seconds histogram")
            for bound in self.BUCKETS:
                out.append(f'registry_http_request_seconds_bucket{{le="{bound}"}} {self.buckets[bound]}')
            out.append(f'registry_http_request_seconds_bucket{{le="+Inf"}} {self.count}')
            out.append(f"registry_http_request_seconds_sum {self.seconds:.6f}")
            out.append(f"registry_http_request_seconds_count {self.count}")
            return out


def install_metrics(app: Flask) -> None:
    metrics = RequestMetrics()
    app.extensions["metrics"] = metrics

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def record(response: Response) -> Response:
        started = g.pop("started", None)
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            metrics.observe(request.method, endpoint, response.status_code, time.perf_counter() - started)
        return response


@blp.route("/healthz", methods=["GET"])
@blp.doc(summary="The process is up")
def healthz() -> Response:
    return respond({"status": "ok"})


@blp.route("/readyz", methods=["GET"])
@blp.doc(summary="The store answers and the views are caught up within the bound")
def readyz() -> Response:
    try:
        logged, projected = registry().reader.lag()
    except Exception:  # any store failure means not ready; the reason goes to the log, not to the caller
        current_app.logger.warning("readyz: the store does not answer", exc_info=True)
        return problem(503, "Not ready", "the store does not answer", headers={"Retry-After": "1"})
    bound = current_app.config["READY_LAG"]
    body = {"status": "ready", "log_position": logged, "projected_position": projected, "lag": logged - projected}
    if logged - projected > bound:
        return problem(503, "Not ready", f"views are {logged - projected} events behind (bound {bound})")
    return respond(body)


@blp.route("/metrics", methods=["GET"])
@blp.doc(summary="Prometheus metrics")
def metrics() -> Response:
    check_reader()
    logged, projected = registry().reader.lag()
    lines = current_app.extensions["metrics"].lines()
    lines += [
        "# TYPE registry_log_position gauge", f"registry_log_position {logged}",
        "# TYPE registry_projection_position gauge", f"registry_projection_position {projected}",
        "# TYPE registry_projection_lag gauge", f"registry_projection_lag {logged - projected}",
        "# TYPE registry_sse_streams gauge", f"registry_sse_streams {registry().feed.streams}",
        "# TYPE registry_webhook_subscriptions gauge",
    ]
    by_status: Counter[str] = Counter(s["status"] for s in registry().webhooks.list())
    lines += [f'registry_webhook_subscriptions{{status="{status}"}} {n}' for status, n in sorted(by_status.items())]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
