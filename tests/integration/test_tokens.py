"""Tokens: a process trusts a token it has looked up for a second; a revocation reaches every process within it."""

from __future__ import annotations

from typing import Any

from registry import tokens as tokens_module
from registry.bootstrap import bootstrap
from registry.settings import Settings
from registry.tokens import TRUSTED_FOR, Principal


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_revocation_in_another_process_is_refused_within_the_trusted_second(
        store_url: str, monkeypatch: Any) -> None:
    clock = Clock()
    monkeypatch.setattr(tokens_module.time, "monotonic", clock)
    server = bootstrap(Settings(database=store_url))
    command_line = bootstrap(Settings(database=store_url))
    try:
        token = command_line.tokens.create("desk-officer", "editor")
        assert server.tokens.authenticate(token) == Principal("desk-officer", "editor")
        assert command_line.tokens.authenticate(token) == Principal("desk-officer", "editor")
        assert server.tokens.authenticate("reg_" + "x" * 43) is None

        command_line.tokens.revoke("desk-officer")
        assert command_line.tokens.authenticate(token) is None  # the revoking process refuses it at once
        clock.now += TRUSTED_FOR / 2
        assert server.tokens.authenticate(token) == Principal("desk-officer", "editor")  # still trusted here
        clock.now += TRUSTED_FOR / 2
        assert server.tokens.authenticate(token) is None  # looked up again: revoked
        clock.now += 10 * TRUSTED_FOR
        assert server.tokens.authenticate(token) is None
    finally:
        server.close()
        command_line.close()


def test_a_revocation_in_the_same_process_is_refused_at_once(store_url: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(tokens_module.time, "monotonic", Clock())
    registry = bootstrap(Settings(database=store_url))
    try:
        token = registry.tokens.create("analyst", "reader")
        assert registry.tokens.authenticate(token) == Principal("analyst", "reader")
        registry.tokens.revoke("analyst")
        assert registry.tokens.authenticate(token) is None
    finally:
        registry.close()
