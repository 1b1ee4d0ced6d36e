"""Operations: liveness, readiness and Prometheus metrics.

Under `registry serve` every gunicorn worker writes its counters to files in
PROMETHEUS_MULTIPROC_DIR (a fresh directory per server run) and a scrape, served
by any worker, sums them: one scrape sees every worker. An app made in-process
(tests) has no such directory and keeps its metrics in a registry of its own.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Iterator

import prometheus_client
from flask import Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.auth import check_reader
from api.common import READ, Blueprint, answer, problems, registry, respond
from api.errors import problem
from api.schemas import Health, Readiness
from registry.service import Registry

blp = Blueprint("ops", __name__, description="Health and metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def multiprocess_directory() -> str | None:
    """Where the workers of one server run share their metrics (set by `registry serve`), if anywhere."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class RequestMetrics:
    """What each process measures itself: requests answered, their time, its open event streams."""

    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

    def __init__(self, store: Registry) -> None:
        if multiprocess_directory() and not getattr(values.ValueClass, "_multiprocess", False):
            raise RuntimeError("prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set")
        prometheus_client.disable_created_metrics()
        self.store = store
        self.registry = CollectorRegistry()
        self.requests = Counter("registry_http_requests_total", "HTTP requests answered",
                                ["method", "endpoint", "status"], registry=self.registry)
        self.seconds = Histogram("registry_http_request_seconds", "Time to answer an HTTP request",
                                 buckets=self.BUCKETS, registry=self.registry)
        self.streams = Gauge("registry_sse_streams", "Open event streams", multiprocess_mode="livesum",
                             registry=self.registry)
        # Group commit: transactions, and the commits and events they stored.
        self.transactions = Counter("registry_commit_transactions", "Write transactions committed",
                                    registry=self.registry)
        self.commits = Counter("registry_commits", "Writes committed (several share a transaction)",
                               registry=self.registry)
        self.events = Counter("registry_committed_events", "Events committed", registry=self.registry)
        store.writer.on_commit = self.committed

    def committed(self, commits: int, events: int) -> None:
        """One transaction of the writer stored `commits` writes of `events` events."""
        self.transactions.inc()
        self.commits.inc(commits)
        self.events.inc(events)

    def observe(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(method, endpoint, str(status)).inc()
        self.seconds.observe(seconds)

    def count_streams(self, open_streams: int) -> None:
        """This process now serves `open_streams` event streams."""
        self.streams.set(open_streams)

    def exposition(self) -> bytes:
        """The Prometheus text of every worker's metrics and of the store's positions."""
        scraped = CollectorRegistry()
        directory = multiprocess_directory()
        if directory is None:
            scraped.register(self.registry)
        else:
            multiprocess.MultiProcessCollector(scraped, path=directory)
        scraped.register(StoreMetrics(self.store))
        return generate_latest(scraped)


class StoreMetrics(Collector):
    """Read from the store at scrape time: the same whichever worker answers."""

    def __init__(self, store: Registry) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        logged, projected = self.store.reader.lag()
        yield GaugeMetricFamily("registry_log_position", "The log's last position", value=logged)
        yield GaugeMetricFamily("registry_projection_position", "The last log position in the views",
                                value=projected)
        yield GaugeMetricFamily("registry_projection_lag", "Events logged but not yet in the views",
                                value=logged - projected)
        subscriptions = GaugeMetricFamily("registry_webhook_subscriptions", "Webhook subscriptions by status",
                                          labels=["status"])
        by_status = collections.Counter(s["status"] for s in self.store.webhooks.list())
        for status, count in sorted(by_status.items()):
            subscriptions.add_metric([status], count)
        yield subscriptions


def install_metrics(app: Flask) -> None:
    metrics = RequestMetrics(app.extensions["registry"])
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
    except Exception:  # any store failure means not ready; the reason goes to the log, not to the caller
        current_app.logger.warning("readyz: the store does not answer", exc_info=True)
        return problem(503, "Not ready", "the store does not answer", headers={"Retry-After": "1"})
    bound = current_app.config["READY_LAG"]
    body = {"status": "ready", "log_position": logged, "projected_position": projected, "lag": logged - projected}
    if logged - projected > bound:
        return problem(503, "Not ready", f"views are {logged - projected} events behind (bound {bound})")
    return respond(body)


@blp.route("/metrics", methods=["GET"])
@blp.doc(summary="Prometheus metrics of every worker of this server",
         responses={200: answer("Prometheus text exposition format", {"type": "string"}, "text/plain"),
                    **problems(*READ)})
def metrics() -> Response:
    check_reader()
    return Response(current_app.extensions["metrics"].exposition(), content_type=CONTENT_TYPE)
