"""The HTTP API: `create_app()` builds a Flask app over one Registry."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

from flask import Flask

from api import answers, audit, batch, feeds, limits, log, ops, pages, records, subscriptions
from api.errors import ProblemApi, register_error_handlers
from registry.bootstrap import bootstrap, require_current
from registry.settings import Settings

SETTINGS = {spec.name for spec in dataclasses.fields(Settings)}


class RegistryApi(ProblemApi):
    def _register_error_handlers(self) -> None:
        register_error_handlers(self._app)


def create_app(test_config: Mapping[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """The API over one Registry. `settings` default to the environment's; `test_config` may
    override settings by their upper-case names (DATABASE, FOLLOW_LOG, …) and Flask's own."""
    settings = settings or Settings.from_env()
    overrides = {key.lower(): value for key, value in (test_config or {}).items() if key.lower() in SETTINGS}
    settings = settings.replace(**overrides)
    app = Flask(__name__)
    app.config.update(
        READ_AUTH=settings.read_auth,
        MAX_CONTENT_LENGTH=settings.max_body,
        READY_LAG=settings.ready_lag,
        SSE_HEARTBEAT=settings.sse_heartbeat,
        MAX_STREAMS=settings.max_streams or None,
        FEED_PAGE_SIZE=settings.feed_page_size,
        BASE_URL=settings.base_url or None,
        API_TITLE="Cooperation Registry",
        API_VERSION="1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "An event-sourced, bitemporal registry of cooperation between parties."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        },
    )
    app.config.update({key: value for key, value in (test_config or {}).items() if key.lower() not in SETTINGS})
    app.json.sort_keys = False  # type: ignore[attr-defined]
    registry = bootstrap(settings)
    require_current(registry)
    app.extensions["settings"] = settings
    app.extensions["registry"] = registry
    if settings.follow_log:
        # Views follow the log even when another process wrote to it.
        stop = threading.Event()
        app.extensions["follower_stop"] = stop
        follower = threading.Thread(target=registry.projection.follow, args=(stop,), name="view-follower", daemon=True)
        app.extensions["follower_thread"] = follower  # joined by api.lifecycle.close()
        follower.start()
    api = RegistryApi(app)
    for blueprint in (records.blp, batch.blp, log.blp, audit.blp, ops.blp, feeds.blp, subscriptions.blp,
                      answers.blp):
        api.register_blueprint(blueprint)
    ops.install_metrics(app)
    feeds.install(app, settings)
    pages.install(app)
    limits.install(app, settings)
    return app
