"""Fixtures for the e2e tests: real `registry serve` processes on SQLite and PostgreSQL.

`store_url` (tests/conftest.py) gives each test a fresh store. A server takes a few
seconds to seed and boot, so the modules whose tests do not interfere share one
per store through `served_store`, which makes stores the same way at module scope.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from e2e_harness import Server, create_token


def _root_conftest(config: pytest.Config) -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "conftest.py"
    module = config.pluginmanager.get_plugin(str(path))
    assert module is not None, f"tests/conftest.py is not loaded from {path}"
    return module  # type: ignore[no-any-return]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def served_store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like `store_url`, for a whole module: a SQLite file or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("store") / "registry.sqlite")
        return
    root = _root_conftest(request.config)
    base = root.postgres_base_url()
    schema = f"t_{root.RUN_ID}_{uuid.uuid4().hex[:10]}"
    yield f"{base}?schema={schema}"
    root._drop_schema(base, schema)


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, served_store: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One seeded server per module and store, with `editor` and `reader` tokens made beforehand.

    A module may set SERVER_ENV (a dict) to pass settings such as REGISTRY_MAX_BODY.
    """
    tokens = {role: create_token(served_store, f"e2e-{role}", role) for role in ("editor", "reader")}
    running = Server(served_store, tmp_path_factory.mktemp("logs"), getattr(request.module, "SERVER_ENV", None))
    running.tokens = tokens
    running.start()
    yield running
    running.stop()


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[[str], Server]]:
    """Start servers on a store; every one still running is stopped at the end."""
    started: list[Server] = []

    def start(database: str) -> Server:
        running = Server(database, tmp_path / "logs")
        started.append(running)
        return running.start()

    yield start
    for running in started:
        running.stop()
