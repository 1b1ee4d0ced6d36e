"""The production server: gunicorn with threaded workers, one Registry per worker."""

from __future__ import annotations

import os
import signal
from typing import Any

from gunicorn.app.base import BaseApplication

from commandline import server_hooks


class RegistryServer(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api import create_app

        return create_app()


def serve(host: str, port: int, workers: int, threads: int) -> None:
    # An event stream holds one thread of its worker for its life: streams get at most
    # `max_streams(threads)` of them, so the other requests always find a free thread.
    os.environ.setdefault("REGISTRY_MAX_STREAMS", str(max_streams(threads)))
    os.environ.setdefault("REGISTRY_DELIVER_WEBHOOKS", "on")  # a delivery thread per worker; leases keep order
    with server_hooks.metrics_directory():
        _run(host, port, workers, threads)


def _run(host: str, port: int, workers: int, threads: int) -> None:
    RegistryServer({
        **server_hooks.HOOKS,  # shared metrics, orderly worker exit (commandline/server_hooks.py)
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "loglevel": "warning",
        "post_worker_init": _end_feeds_on_term,
    }).run()


def max_streams(threads: int) -> int:
    return max(1, threads - max(2, threads // 4))


def _end_feeds_on_term(worker: Any) -> None:
    """On SIGTERM, end the worker's event streams at once: a graceful stop need not wait for them."""
    from api import feeds

    graceful = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        server_hooks.stop_keeping_alive(worker)
        feeds.stop(worker.wsgi)
        if callable(graceful):
            graceful(signum, frame)

    signal.signal(signal.SIGTERM, on_term)
