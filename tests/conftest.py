"""Stores for the tests: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL comes from REGISTRY_TEST_DATABASE_URL; each test gets its own schema,
dropped afterwards, so runs never see each other's data. Without the variable
the PostgreSQL cases skip, unless REGISTRY_REQUIRE_POSTGRES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry.bootstrap import bootstrap
from registry.service import Registry
from registry.settings import Settings

RUN_ID = uuid.uuid4().hex[:8]


def postgres_base_url() -> str | None:
    url = os.environ.get("REGISTRY_TEST_DATABASE_URL")
    reason = None
    if not url:
        reason = "REGISTRY_TEST_DATABASE_URL is not set"
    else:
        try:
            import psycopg

            psycopg.connect(url, connect_timeout=3).close()
        except Exception as error:  # unreachable server
            reason = f"PostgreSQL at {url} is unreachable: {error}"
    if reason is None:
        return url
    if os.environ.get("REGISTRY_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (REGISTRY_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")
    return None


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(autouse=True, scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Checkpoints signed in-process use a key of the test run's, never one in var/."""
    os.environ.setdefault("REGISTRY_SIGNING_KEY", str(tmp_path_factory.mktemp("keys") / "signing.key"))
    yield


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield str(tmp_path / "registry.sqlite")
        return
    base = postgres_base_url()
    assert base is not None
    schema = f"t_{RUN_ID}_{uuid.uuid4().hex[:10]}"
    yield f"{base}?schema={schema}"
    _drop_schema(base, schema)


@pytest.fixture
def registry(store_url: str) -> Iterator[Registry]:
    registry = bootstrap(Settings(database=store_url))
    yield registry
    registry.close()
