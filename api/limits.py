"""Limits on what one request may cost: body size (chunked too), expensive reads per client,
and one audit verification at a time per process (SPEC section 11)."""

from __future__ import annotations

import functools
import io
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from flask_limiter import Limiter, RateLimitExceeded
from flask_limiter.util import get_remote_address
from limits import parse_many

from api.errors import problem
from registry.settings import ConfigError, Settings

# Reads that walk much of the store; each costs a share of one per-client budget.
EXPENSIVE_READS = ("log.snapshot", "log.timeline", "audit.verify", "audit.export", "feeds.calendar",
                   "answers.changes", "answers.search")
ONE_AT_A_TIME = ("audit.verify",)

Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def install(app: Flask, settings: Settings) -> None:
    """Wrap the app in the body limit; limit expensive reads (call after the blueprints are registered)."""
    app.wsgi_app = BodyLimit(app.wsgi_app, settings.max_body)  # type: ignore[method-assign]
    if not settings.base_url:
        guard_host(app)
    if settings.rate_limit.lower() not in ("", "off"):
        try:
            parse_many(settings.rate_limit)
        except ValueError as error:
            raise ConfigError(f"REGISTRY_RATE_LIMIT={settings.rate_limit!r}: give e.g. '120 per minute'") from error
        limiter = Limiter(get_remote_address, app=app, storage_uri="memory://", headers_enabled=True,
                          strategy="moving-window")
        # Only the expensive reads have limits, and their decorators check them: drop the hook
        # Flask-Limiter runs before every request (a tenth of a millisecond each).
        app.before_request_funcs[None].remove(limiter._check_request_limit)
        shared = limiter.shared_limit(settings.rate_limit, scope="expensive-reads")
        for endpoint in EXPENSIVE_READS:
            if endpoint in app.view_functions:
                app.view_functions[endpoint] = shared(app.view_functions[endpoint])  # type: ignore[assignment]
        app.register_error_handler(RateLimitExceeded, too_many)
    for endpoint in ONE_AT_A_TIME:
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = one_at_a_time(app.view_functions[endpoint])


HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?")


def guard_host(app: Flask) -> None:
    """Without REGISTRY_BASE_URL, links in feeds and headers are made from the request's Host:
    a malformed one is a 400, and answers vary by Host so that no shared cache mixes them up."""

    @app.before_request
    def check_host() -> Response | None:
        host = request.environ.get("HTTP_HOST")
        if host is None:
            return None
        found = HOST.fullmatch(host)
        if found is None or (found.group(1) is not None and int(found.group(1)) > 65535):
            return problem(400, "Bad Request", "the Host header is malformed")
        return None

    @app.after_request
    def vary_by_host(response: Response) -> Response:
        response.vary.add("Host")
        return response


def too_many(error: RateLimitExceeded) -> Response:
    return problem(429, "Too Many Requests",
                   f"this client has made more expensive reads than allowed ({error.description}); try again later",
                   headers={"Retry-After": "60"})


def one_at_a_time(view: Callable[..., Any]) -> Callable[..., Any]:
    running = threading.Lock()

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        if not running.acquire(blocking=False):
            return problem(429, "Too Many Requests", "a verification is already running here; try again later",
                           headers={"Retry-After": "5"})
        try:
            return view(*args, **kwargs)
        finally:
            running.release()

    return guarded


class BodyLimit:
    """A body sent without Content-Length (chunked) is read here, up to the limit: over it is
    413, a malformed one 400, and the app sees a plain body with its length."""

    def __init__(self, app: Callable[[Environ, StartResponse], Iterable[bytes]], max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("CONTENT_LENGTH") or "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return self.app(environ, start_response)
        try:
            body = environ["wsgi.input"].read(self.max_body + 1)
        except Exception:  # the server's chunk parser refused the framing, or the client went away
            return self.refuse(environ, start_response, 400, "Bad Request", "the chunked body is malformed")
        if len(body) > self.max_body:
            return self.refuse(environ, start_response, 413, "Content Too Large",
                               f"the body is larger than {self.max_body} bytes (REGISTRY_MAX_BODY)")
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
        return self.app(environ, start_response)

    @staticmethod
    def refuse(environ: Environ, start_response: StartResponse, status: int, title: str,
               detail: str) -> Iterable[bytes]:
        response = problem(status, title, detail)
        response.headers["Connection"] = "close"  # the rest of the body is not read
        return response(environ, start_response)
