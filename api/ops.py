"""Operations: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import threading
import time
from collections import Counter

from flask import Flask, Response, current_app, g, request

from api.common import READ, Blueprint, answer, problems, registry, respond
from api.errors import problem
from api.schemas import Health, Readiness
from registry.log.writer import WriterStats

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
@blp.doc(summary="The process is up", responses={200: answer("always ok", Health)})
def healthz() -> Response:
    return respond({"status": "ok"})


@blp.route("/readyz", methods=["GET"])
@blp.doc(summary="The store answers and the views are caught up within the bound",
         responses={200: answer("ready, with the log's and the views' positions", Readiness), **problems(503)})
def readyz() -> Response:
    try:
        logged, projected = registry().reader.lag()
    except Exception as error:  # any store failure means not ready
        return problem(503, "Not ready", f"the store does not answer: {error}")
    bound = current_app.config["READY_LAG"]
    body = {"status": "ready", "log_position": logged, "projected_position": projected, "lag": logged - projected}
    if logged - projected > bound:
        return problem(503, "Not ready", f"views are {logged - projected} events behind (bound {bound})")
    return respond(body)


def writer_lines(stats: WriterStats) -> list[str]:
    """Group commit: transactions, and the commits and events they held (this process)."""
    return [
        "# TYPE registry_commit_transactions_total counter", f"registry_commit_transactions_total {stats.transactions}",
        "# TYPE registry_commits_total counter", f"registry_commits_total {stats.commits}",
        "# TYPE registry_committed_events_total counter", f"registry_committed_events_total {stats.events}",
    ]


@blp.route("/metrics", methods=["GET"])
@blp.doc(summary="Prometheus metrics",
         responses={200: answer("Prometheus text exposition format", {"type": "string"},
                                "text/plain"), **problems(*READ)})
def metrics() -> Response:
    logged, projected = registry().reader.lag()
    lines = current_app.extensions["metrics"].lines()
    lines += [
        "# TYPE registry_log_position gauge", f"registry_log_position {logged}",
        "# TYPE registry_projection_position gauge", f"registry_projection_position {projected}",
        "# TYPE registry_projection_lag gauge", f"registry_projection_lag {logged - projected}",
        "# TYPE registry_sse_streams gauge", f"registry_sse_streams {registry().feed.streams}",
        *writer_lines(registry().writer.stats),
        "# TYPE registry_webhook_subscriptions gauge",
    ]
    by_status: Counter[str] = Counter(s["status"] for s in registry().webhooks.list())
    lines += [f'registry_webhook_subscriptions{{status="{status}"}} {n}' for status, n in sorted(by_status.items())]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
