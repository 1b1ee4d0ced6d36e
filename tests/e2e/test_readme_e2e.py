"""The README runs as written: every `sh` or `bash` block of README.md, in order, against a
fresh store and a real `registry serve`, each command exiting 0 and every HTTP call answering 2xx.

Conventions of the README this test relies on:
- only blocks fenced as ```sh or ```bash run; ```console blocks (servers, the test suite,
  sample output) and blocks whose first line is `# not run` are for reading only;
- the server is at http://127.0.0.1:8000 and PostgreSQL at 127.0.0.1:5432 as user `postgres`:
  this test puts its own server's URL there, and a fresh database for `registry`;
- blocks run one after another in one directory (holding `.venv` and `var/`); variables a
  block sets are seen by the blocks after it; `REGISTRY_DATABASE` is the test's store unless
  a block sets it, and then only within that block;
- `curl` fails on any HTTP status of 400 or more (`--fail-with-body`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_harness import Server

from registry.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
RUNNABLE = ("sh", "bash")
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
EXAMPLE_URL = "http://127.0.0.1:8000"
EXAMPLE_DATABASE = "registry"

PRELUDE = """\
set -euo pipefail
set -a
if [ -f "$README_STATE" ]; then source "$README_STATE"; fi
export REGISTRY_DATABASE="$README_STORE"
curl() { command curl --silent --show-error --fail-with-body "$@"; }
trap 'echo "README line $README_LINE: failed: $BASH_COMMAND" >&2' ERR
"""
EPILOGUE = """
export -p | grep -v ' REGISTRY_DATABASE=' > "$README_STATE"
"""


def runnable_blocks(text: str) -> list[tuple[int, str]]:
    """(line of the opening fence, code) of every block the README asks to run."""
    blocks = []
    for found in FENCE.finditer(text):
        info, code = found.group(1), found.group(2)
        if info not in RUNNABLE or code.lstrip().startswith("# not run"):
            continue
        blocks.append((text.count("\n", 0, found.start()) + 1, code))
    return blocks


def test_the_readme_names_its_runnable_blocks() -> None:
    blocks = runnable_blocks(README.read_text())
    assert len(blocks) >= 10
    commands = "\n".join(code for _, code in blocks)
    for needed in ("/v1/changes?from=", "/v1/changes?known_from=", "/v1/search?q=", "format=csv", "createdb",
                   "registry verify", "registry export"):
        assert needed in commands, needed
    # The README names only files of the repository (var/ is made at run time), and no document outside it.
    text = README.read_text()
    named = set(re.findall(r"`([A-Za-z_.][\w.-]*/[\w./-]*)`", text))
    bases = [ROOT, *(folder for folder in ROOT.iterdir() if folder.is_dir())]  # `unit/` under tests/, say
    media_types = re.compile(r"^(text|application|image|multipart)/")
    defaults = {str(default) for _, default, _ in Settings.variables()}  # a setting's value, not a path
    missing = [path for path in named if not path.startswith("var/") and not media_types.match(path)
               and path not in defaults and not any((base / path).exists() for base in bases)]
    assert named and missing == []
    assert "SPEC" not in text


@pytest.fixture
def database_name(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh PostgreSQL database name for the README's `registry`, dropped afterwards
    (the README's PostgreSQL section needs a server: without one this test skips, as others do)."""
    root = request.config.pluginmanager.get_plugin(str(ROOT / "tests" / "conftest.py"))
    assert root is not None
    base = root.postgres_base_url()
    name = f"readme_{uuid.uuid4().hex[:10]}"
    yield name
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_every_shell_block_of_the_readme_runs(store_url: str, launch: Callable[[str], Server], tmp_path: Path,
                                              database_name: str) -> None:
    server = launch(store_url)
    work = tmp_path / "work"
    (work / "var").mkdir(parents=True)
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    state = tmp_path / "state.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(README_STATE=str(state), README_STORE=store_url)

    blocks = runnable_blocks(README.read_text())
    for line, code in blocks:
        code = code.replace(EXAMPLE_URL, server.url)
        code = code.replace(f"5432/{EXAMPLE_DATABASE}?", f"5432/{database_name}?")
        code = code.replace(f"-U postgres {EXAMPLE_DATABASE}\n", f"-U postgres {database_name}\n")
        done = subprocess.run(["bash", "-c", PRELUDE + code + EPILOGUE], cwd=work,
                              env={**env, "README_LINE": str(line)}, capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"README.md line {line}:\n{code}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"

    # The examples answered with something: the as-of list, the changes and the CSV file.
    assert (work / "var" / "agreements.csv").read_text().startswith("id,")
    assert server.head_position() > 22
