"""The container files, read as an operator would (no Docker engine here): commands the CLI
accepts, a non-root user, a /data volume, the API published on loopback by default."""

from __future__ import annotations

import json
import re
from pathlib import Path

from commandline.main import parser

ROOT = Path(__file__).resolve().parents[2]


def test_compose_commands_are_registry_commands() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    commands = [json.loads(found) for found in re.findall(r"^\s+command: (\[.*\])$", compose, re.M)]
    assert [command[0] for command in commands] == ["serve", "project"]
    for command in commands:
        args = parser().parse_args(command)
        assert callable(args.run)
    serve = parser().parse_args(commands[0])
    assert (serve.host, serve.port, serve.workers) == ("0.0.0.0", 8000, 4)


def test_compose_publishes_on_loopback_by_default_and_keeps_data() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    ports = re.findall(r'^\s+- "(.*:8000:8000)"$', compose, re.M)
    assert ports == ["${REGISTRY_PUBLISH:-127.0.0.1}:8000:8000"]
    assert compose.count("registry-data:/data") == 2


def test_the_image_runs_as_a_user_with_a_data_volume() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER (\S+)$", dockerfile, re.M)
    assert users and users[-1] not in ("root", "0")
    assert 'VOLUME ["/data"]' in dockerfile and "REGISTRY_DATABASE=/data/" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "*.sqlite", "*.key"} <= set(ignored)
