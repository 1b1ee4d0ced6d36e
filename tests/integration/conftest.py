"""Fixtures for HTTP-level integration tests: the Flask app over a seeded store of each kind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient

from api import create_app
from registry.seed import seed


@pytest.fixture
def client(store_url: str) -> Iterator[tuple[FlaskClient, dict[str, str]]]:
    """A test client of the app on a seeded store, and the headers of an editor's token."""
    app = create_app({"DATABASE": store_url, "FOLLOW_LOG": False})
    registry = app.extensions["registry"]
    seed(registry)
    token = registry.tokens.create("editor", "editor")
    yield app.test_client(), {"Authorization": f"Bearer {token}"}
    registry.close()
