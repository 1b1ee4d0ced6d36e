"""The production server: gunicorn with threaded workers, one Registry per worker."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


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
    RegistryServer({
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": "-",
        "loglevel": "warning",
    }).run()
