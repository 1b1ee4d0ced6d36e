"""Settings: read once from the environment, every variable documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from registry.settings import DEFAULT_DATABASE, ConfigError, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_an_empty_environment_gives_the_embedded_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.store.engine == "sqlite" and settings.store.sqlite_path == DEFAULT_DATABASE


def test_variables_are_parsed_by_the_type_of_their_setting() -> None:
    settings = Settings.from_env({
        "REGISTRY_DATABASE": "postgresql://app@db:5433/registry?schema=prod",
        "REGISTRY_READ_AUTH": "ON", "REGISTRY_MAX_BODY": "1024", "REGISTRY_FEED_POLL": "0.5",
        "REGISTRY_DELIVER_WEBHOOKS": "off", "REGISTRY_POOL_SIZE": "9", "REGISTRY_BASE_URL": " ",
    })
    assert (settings.read_auth, settings.max_body, settings.feed_poll) == (True, 1024, 0.5)
    assert settings.deliver_webhooks == "off" and settings.base_url == ""
    store = settings.store
    assert (store.engine, store.schema, store.pool_size) == ("postgres", "prod", 9)
    assert dict(store.pg)["POSTGRES_PORT"] == "5433"
    assert store.library_env()["POSTGRES_POOL_SIZE"] == "9"


@pytest.mark.parametrize(("name", "value"), [
    ("REGISTRY_READ_AUTH", "maybe"), ("REGISTRY_MAX_BODY", "lots"), ("REGISTRY_FEED_WAIT", "-1"),
    ("REGISTRY_DELIVER_WEBHOOKS", "sometimes"),
])
def test_an_unusable_value_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_the_readme_lists_every_variable_with_its_default() -> None:
    text = README.read_text()
    rows = dict(re.findall(r"^\| `(REGISTRY_[A-Z_]+)` \| `([^`]*)` \|", text, flags=re.M))
    for name, default, _ in Settings.variables():
        assert name in rows, f"{name} is not in the README's settings table"
        shown = ("on" if default else "off") if isinstance(default, bool) else (str(default) or "none")
        assert rows[name] == shown, f"{name}: the README says {rows[name]!r}, the code {shown!r}"
