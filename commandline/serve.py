"""The production server: gunicorn with threaded workers, one Registry per worker."""

from __future__ import annotations

import signal
from typing import Any

from gunicorn.app.base import BaseApplication

from commandline import server_hooks
from commandline.worker import worker_class
from registry.settings import Settings


class RegistryServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn, loading the app in each worker (after fork) from the settings it was given."""

    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api import create_app

        return create_app(settings=self.settings)


def serve(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    settings = settings.replace(
        # An event stream holds one thread of its worker for its life: streams get at most
        # `max_streams(threads)` of them, so the other requests always find a free thread.
        max_streams=settings.max_streams or max_streams(threads),
        # A delivery thread per worker; leases keep each subscription's order.
        deliver_webhooks="on" if settings.deliver_webhooks == "auto" else settings.deliver_webhooks,
    )
    with server_hooks.metrics_directory():
        _run(settings, host, port, workers, threads)


def _run(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    RegistryServer(settings, {
        **server_hooks.HOOKS,  # shared metrics, orderly worker exit (commandline/server_hooks.py)
        "bind": f"{host}:{port}",
        "workers": workers,
        # gthread, but a request is read whole (within REGISTRY_REQUEST_TIMEOUT) before a thread takes it
        "worker_class": worker_class(settings.request_timeout or 10.0, settings.max_body),
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "loglevel": "warning",
        "post_worker_init": _ready_worker,
    }).run()


def max_streams(threads: int) -> int:
    return max(1, threads - max(2, threads // 4))


def _ready_worker(worker: Any) -> None:
    """In the worker, its app loaded, before it serves."""
    _end_feeds_on_term(worker)
    server_hooks.freeze_startup_objects()


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
