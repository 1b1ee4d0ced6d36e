"""The HTTP API: `create_app()` builds a Flask app over one Registry."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask
from flask_smorest import Api

from api import answers, audit, feeds, log, ops, pages, records, subscriptions
from api.errors import register_error_handlers
from registry.service import Registry
from registry.settings import StoreConfig


class RegistryApi(Api):
    def _register_error_handlers(self) -> None:
        register_error_handlers(self._app)


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(
        DATABASE=os.environ.get("REGISTRY_DATABASE"),
        READ_AUTH=os.environ.get("REGISTRY_READ_AUTH", "off").lower() in ("on", "1", "true", "yes"),
        MAX_CONTENT_LENGTH=int(os.environ.get("REGISTRY_MAX_BODY", 256 * 1024)),
        READY_LAG=int(os.environ.get("REGISTRY_READY_LAG", 1000)),
        FOLLOW_LOG=os.environ.get("REGISTRY_FOLLOW_LOG", "on").lower() in ("on", "1", "true", "yes"),
        API_TITLE="Cooperation Registry",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=None,  # /docs is served by api.pages from vendored Swagger UI
        API_SPEC_OPTIONS={
            "info": {"description": "An event-sourced, bitemporal registry of cooperation between parties."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
    )
    if test_config:
        app.config.update(test_config)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    registry = Registry(StoreConfig.from_url(app.config["DATABASE"]))
    app.extensions["registry"] = registry
    registry.projection.catch_up()
    if app.config["FOLLOW_LOG"]:
        # Views follow the log even when another process wrote to it.
        stop = threading.Event()
        app.extensions["follower_stop"] = stop
        threading.Thread(target=registry.projection.follow, args=(stop,), name="view-follower", daemon=True).start()
    api = RegistryApi(app)
    for blueprint in (records.blp, log.blp, audit.blp, ops.blp, feeds.blp, subscriptions.blp, answers.blp):
        api.register_blueprint(blueprint)
    ops.install_metrics(app)
    feeds.install(app)
    pages.install(app)
    return app
