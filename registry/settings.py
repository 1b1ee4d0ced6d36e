"""Configuration from the environment, with an embedded SQLite default."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlparse

DEFAULT_DATABASE = "var/registry.sqlite"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class StoreConfig:
    """Where the store lives: a SQLite file or a PostgreSQL database (and schema)."""

    url: str
    engine: str
    sqlite_path: str = ""
    pg: tuple[tuple[str, str], ...] = ()
    schema: str = "public"

    @classmethod
    def from_url(cls, url: str | None = None) -> StoreConfig:
        url = url or os.environ.get("REGISTRY_DATABASE") or DEFAULT_DATABASE
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
            return cls(url, "postgres", pg=tuple(pg.items()), schema=schema)
        if "://" in url:
            raise ConfigError(f"unsupported database {url!r}: give a SQLite path or a postgresql:// URL")
        path = url.removeprefix("sqlite:")
        return cls(url, "sqlite", sqlite_path=path)

    def library_env(self) -> dict[str, str]:
        """The `eventsourcing` environment for this store."""
        if self.engine == "postgres":
            env = dict(self.pg)
            env.update(
                PERSISTENCE_MODULE="eventsourcing.postgres",
                POSTGRES_SCHEMA=self.schema,
                POSTGRES_POOL_SIZE=os.environ.get("REGISTRY_POOL_SIZE", "4"),
                POSTGRES_MAX_OVERFLOW="8",
                POSTGRES_ENABLE_DB_FUNCTIONS="n",
            )
            return env
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": self.sqlite_path}
