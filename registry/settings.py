"""Settings: read once from the environment (`Settings.from_env()`), then passed down.

Every `REGISTRY_*` variable is a field here, with its default; the README lists them all.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

DEFAULT_DATABASE = "var/registry.sqlite"
ON = ("on", "1", "true", "yes")
OFF = ("off", "0", "false", "no")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class StoreConfig:
    """Where the store lives: a SQLite file or a PostgreSQL database (and schema)."""

    url: str
    engine: str
    sqlite_path: str = ""
    pg: tuple[tuple[str, str], ...] = ()
    schema: str = "public"
    pool_size: int = 4

    @classmethod
    def from_url(cls, url: str | None = None, pool_size: int = 4) -> StoreConfig:
        url = url or DEFAULT_DATABASE
        if url.startswith(("postgresql://", "postgres://")):
            parts = urlparse(url)
            query = parse_qs(parts.query)
            schema = query.get("schema", ["public"])[0]
            if not schema.replace("_", "").isalnum():
                raise ConfigError(f"schema {schema!r} must be letters, digits and underscores")
            pg = {
                "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
                "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                "POSTGRES_PORT": str(parts.port or 5432),
                "POSTGRES_USER": unquote(parts.username or "postgres"),
                "POSTGRES_PASSWORD": unquote(parts.password or ""),
            }
            return cls(url, "postgres", pg=tuple(pg.items()), schema=schema, pool_size=pool_size)
        if "://" in url:
            raise ConfigError(f"unsupported database {url!r}: give a SQLite path or a postgresql:// URL")
        path = url.removeprefix("sqlite:")
        return cls(url, "sqlite", sqlite_path=path, pool_size=pool_size)

    def library_env(self) -> dict[str, str]:
        """The `eventsourcing` environment for this store."""
        if self.engine == "postgres":
            env = dict(self.pg)
            env.update(
                PERSISTENCE_MODULE="eventsourcing.postgres",
                POSTGRES_SCHEMA=self.schema,
                POSTGRES_POOL_SIZE=str(self.pool_size),
                POSTGRES_MAX_OVERFLOW="8",
                POSTGRES_ENABLE_DB_FUNCTIONS="n",
                # While PostgreSQL is down, a request waits this long for a connection, then is a 503.
                POSTGRES_CONNECT_TIMEOUT="2",
            )
            return env
        return {"PERSISTENCE_MODULE": "registry.log.sqlite:Factory", "SQLITE_DBNAME": self.sqlite_path}


def _setting(default: Any, env: str, help: str, choices: tuple[str, ...] = ()) -> Any:
    return field(default=default, metadata={"env": env, "help": help, "choices": choices})


@dataclass(frozen=True)
class Settings:
    """Everything the registry's processes are configured by."""

    database: str = _setting(DEFAULT_DATABASE, "REGISTRY_DATABASE",
                             "the store: a SQLite path or a postgresql:// URL (`?schema=NAME` optional)")
    pool_size: int = _setting(4, "REGISTRY_POOL_SIZE", "PostgreSQL connections per process")
    read_auth: bool = _setting(False, "REGISTRY_READ_AUTH", "`on`: every GET needs a token, but /healthz, /readyz")
    max_body: int = _setting(256 * 1024, "REGISTRY_MAX_BODY", "largest request body, in bytes (413 beyond)")
    ready_lag: int = _setting(1000, "REGISTRY_READY_LAG", "events the views may lag behind the log for /readyz")
    follow_log: bool = _setting(True, "REGISTRY_FOLLOW_LOG",
                                "API processes catch their views up with writes of other processes")
    base_url: str = _setting("", "REGISTRY_BASE_URL",
                             "the public URL used in feeds and webhooks (default: the request's)")
    feed_poll: float = _setting(0.02, "REGISTRY_FEED_POLL", "SQLite: seconds between polls of the log for feeds")
    feed_wait: float = _setting(1.0, "REGISTRY_FEED_WAIT",
                                "PostgreSQL: longest wait for a notification before reading the log anyway")
    feed_page_size: int = _setting(100, "REGISTRY_FEED_PAGE_SIZE", "entries per Atom page")
    sse_heartbeat: float = _setting(15.0, "REGISTRY_SSE_HEARTBEAT", "seconds between SSE heartbeat comments")
    max_streams: int = _setting(0, "REGISTRY_MAX_STREAMS",
                                "SSE streams per process (0: as `serve` derives from its threads; none in-process)")
    deliver_webhooks: str = _setting("auto", "REGISTRY_DELIVER_WEBHOOKS",
                                     "`on`/`off`: deliver webhooks from API processes (`auto`: on under `serve`)",
                                     choices=("auto", "on", "off"))
    webhook_allow_private: bool = _setting(False, "REGISTRY_WEBHOOK_ALLOW_PRIVATE",
                                           "allow webhook targets on loopback and private addresses")
    webhook_timeout: float = _setting(10.0, "REGISTRY_WEBHOOK_TIMEOUT", "seconds for one webhook POST")
    webhook_backoff: float = _setting(1.0, "REGISTRY_WEBHOOK_BACKOFF", "first retry delay; doubles per failure")
    webhook_backoff_max: float = _setting(3600.0, "REGISTRY_WEBHOOK_BACKOFF_MAX", "longest retry delay, seconds")
    webhook_lease: float = _setting(60.0, "REGISTRY_WEBHOOK_LEASE",
                                    "seconds a process holds a subscription while delivering")
    webhook_workers: int = _setting(8, "REGISTRY_WEBHOOK_WORKERS", "subscriptions delivered at once per process")
    webhook_tick: float = _setting(0.5, "REGISTRY_WEBHOOK_TICK", "seconds between looks for due retries")
    signing_key: str = _setting("var/signing.key", "REGISTRY_SIGNING_KEY",
                                "the Ed25519 key that signs checkpoints (PKCS#8 PEM; made, mode 0600, on first use)")
    log_origin: str = _setting("cooperation-registry/log", "REGISTRY_LOG_ORIGIN",
                               "the log's name in its checkpoints and verifier key")
    rate_limit: str = _setting("120 per minute", "REGISTRY_RATE_LIMIT",
                               "expensive reads (snapshot, timeline, audit, calendar) per client address; `off`: none")
    request_timeout: float = _setting(10.0, "REGISTRY_REQUEST_TIMEOUT",
                                      "`serve`: seconds a request's headers and body may take to arrive")
    workers: int = _setting(2, "REGISTRY_WORKERS", "`serve`: worker processes")
    threads: int = _setting(64, "REGISTRY_THREADS", "`serve`: threads per worker")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from `environ` (default: the process environment); raises ConfigError."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            text = environ.get(spec.metadata["env"])
            if text is not None and text.strip() != "":
                values[spec.name] = _parse(spec, text.strip())
        return cls(**{**values, **overrides})

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def store(self) -> StoreConfig:
        return StoreConfig.from_url(self.database, self.pool_size)

    @staticmethod
    def variables() -> list[tuple[str, Any, str]]:
        """(variable, default, meaning) of every setting."""
        return [(f.metadata["env"], f.default, f.metadata["help"]) for f in dataclasses.fields(Settings)]


def _parse(spec: dataclasses.Field[Any], text: str) -> Any:
    name = spec.metadata["env"]
    kind: Any = type(spec.default)
    if kind is bool:
        if text.lower() in ON:
            return True
        if text.lower() in OFF:
            return False
        raise ConfigError(f"{name}={text!r}: give on or off")
    if kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            raise ConfigError(f"{name}={text!r}: give a number") from None
        if value < 0:
            raise ConfigError(f"{name}={text!r}: must not be negative")
        return value
    choices = spec.metadata["choices"]
    if choices and text.lower() not in choices:
        raise ConfigError(f"{name}={text!r}: give one of {', '.join(choices)}")
    return text.lower() if choices else text
