"""The HTTP bars of SPEC section 7, measured with `wrk` against a real `registry serve`, side by side.

  appends     POST /v1/organisations/{id}/events, one event per request, 16 connections, against
              the bare `eventsourcing` library saving one event at a time (get, trigger, save) to the
              same kind of store, in turns: bar 1.0x, p99 at most 50 ms
  batch       POST /v1/batch with 500 appends a request, two connections a worker: bar 10,000
              events/s (SQLite)
  view        GET /v1/organisations/{id} against GET /healthz on the same server, in turns: bar 0.6x
  lists       GET /v1/agreements?party=NO&limit=100 at 50,000 agreements against 500, in turns
              (median latency): bar 2x

`wrk` (a Debian package) drives the load; Python clients saturate before the server does.

    python bench/http_rates.py [--seconds 10] [--rounds 3] [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import requests
from _common import add_database_argument, create_token, engine_name, fresh_stores, server, table
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from registry.settings import StoreConfig

CONNECTIONS = 16
RECORDS = 256  # organisations the appends spread over (per wrk thread: RECORDS / 2)
PER_THREAD = RECORDS // 2  # records a wrk thread appends to, of its own
BATCH_EVENTS = 500
LIST_SIZES = (500, 50_000)

APPEND_LUA = """
local counter, records, serial = 0, %(per_thread)d, 0
tid = 0  -- a global: setup() gives each wrk thread its own, so threads append to records of their own
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
function setup(thread) thread:set("tid", serial); serial = serial + 1 end
function request()
  local r = (counter %% records) + tid * records
  local day = math.floor(counter / records)
  counter = counter + 1
  local valid = string.format("%%04d-%%02d-%%02d", %(year)d + math.floor(day / 336),
                              math.floor((day %% 336) / 28) + 1, day %% 28 + 1)
  return wrk.format(nil, "/v1/organisations/bench-%(run)s-" .. r .. "/events", nil,
    '{"type":"renamed","valid":"' .. valid .. '","name":"Agency ' .. counter .. '"}')
end
"""

BATCH_LUA = """
local counter, serial = 0, 0
tid = 0  -- a global, set per wrk thread by setup()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
function setup(thread) thread:set("tid", serial); serial = serial + 1 end
function request()
  local writes = {}
  local day = counter
  counter = counter + 1
  local valid = string.format("%%04d-%%02d-%%02d", %(year)d + math.floor(day / 336),
                              math.floor((day %% 336) / 28) + 1, day %% 28 + 1)
  for i = 0, %(events)d - 1 do
    local r = i %% %(per_thread)d + tid * %(per_thread)d
    writes[#writes + 1] = '{"op":"append","collection":"organisations","id":"bench-%(run)s-' .. r ..
      '","body":{"type":"renamed","valid":"' .. valid .. '","name":"Agency ' .. i .. '"}}'
  end
  return wrk.format(nil, "/v1/batch", nil, '{"writes":[' .. table.concat(writes, ",") .. ']}')
end
"""

GET_LUA = """
wrk.headers["Authorization"] = "Bearer %(token)s"
"""


class Agency(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name

    @event("Renamed")
    def rename(self, name: str, valid: str) -> None:
        self.name = name
        self.valid = valid


class BareApplication(Application[uuid.UUID]):
    name = "bare"


def bare_rate(url: str, seconds: float) -> float:
    """Events/s of the bare library: get, one event, save, one save at a time."""
    app = BareApplication(env={**StoreConfig.from_url(url).library_env(), "AGGREGATE_CACHE_MAXSIZE": "2000"})
    try:
        ids = []
        for r in range(RECORDS):
            agency = Agency(f"bench-agency-{r}")
            app.save(agency)
            ids.append(agency.id)
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            agency = app.repository.get(ids[count % RECORDS])
            agency.rename(f"Agency {count}", f"{1900 + count // RECORDS // 336:04d}-01-01")
            app.save(agency)
            count += 1
        return count / (time.perf_counter() - started)
    finally:
        app.close()


def wrk(base: str, path: str, script: str, seconds: float, connections: int = CONNECTIONS,
        threads: int = 2) -> dict[str, float]:
    """Requests/s and latency percentiles (ms) from one wrk run; every answer must be 2xx."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        done = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", lua.name,
             base + path], capture_output=True, text=True, check=False)
    finally:
        os.unlink(lua.name)
    out = done.stdout
    if done.returncode != 0:
        raise SystemExit(f"wrk failed on {path}: {done.stderr or out}")
    if "Non-2xx" in out:
        raise SystemExit(f"wrk saw failed requests on {path}:\n{out}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = {f"p{q}": _ms(re.search(rf"^\s+{q}%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
               for q in (50, 99)}
    return {"rate": rate, **latency}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


@contextmanager
def served(url: str, workers: int, threads: int) -> Iterator[tuple[str, str]]:
    token = create_token(url, "bench", "editor")
    with server(url, workers, threads) as base:
        yield base, token


def post_batches(base: str, token: str, writes: list[dict[str, Any]]) -> None:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        for start in range(0, len(writes), 1000):
            done = session.post(f"{base}/v1/batch", json={"writes": writes[start:start + 1000]}, timeout=300)
            if done.status_code != 201:
                raise SystemExit(f"batch failed: {done.status_code} {done.text[:300]}")


def agreements(count: int) -> list[dict[str, Any]]:
    """Agreements signed in 2012; every seventh also has Norway as a party."""
    writes = []
    for n in range(count):
        record = f"bench-agreement-{n:06d}"
        writes.append({"op": "register", "collection": "agreements",
                       "body": {"id": record, "title": f"Agreement {n}",
                                "parties": ["eu", "RU"] + (["NO"] if n % 7 == 0 else [])}})
        writes.append({"op": "append", "collection": "agreements", "id": record,
                       "body": {"type": "signed", "valid": "2012"}})
    return writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--seconds", type=int, default=10, help="seconds per timed run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="turns of the append and view comparisons (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=32, help="threads per worker (default 32)")
    parser.add_argument("--bars", default="appends,batch,view,lists",
                        help="which bars to measure, comma-separated (default: all four)")
    args = parser.parse_args()
    bars = set(args.bars.split(","))
    if not bars <= {"appends", "batch", "view", "lists"}:
        raise SystemExit(f"--bars takes appends, batch, view and lists, not {args.bars!r}")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    engine = engine_name(args.database)
    print(f"HTTP bars on {engine}: wrk, {CONNECTIONS} connections, {args.workers} workers x {args.threads} threads, "
          f"{args.seconds:g} s a run, {os.cpu_count()} CPUs", flush=True)
    rows: list[list[Any]] = []
    run = uuid.uuid4().hex[:6]
    values = {"token": "", "run": run, "per_thread": PER_THREAD, "events": BATCH_EVENTS}
    # Batches come over two connections a worker, each from a wrk thread of its own: with one
    # connection a worker, gunicorn's workers race to accept, and often one takes both.
    batch_connections = 2 * args.workers

    with fresh_stores(args.database, ["bare", "http", "list_small", "list_large"]) as urls:
        with served(urls["http"], args.workers, args.threads) as (base, token):
            values["token"] = token
            post_batches(base, token, [{"op": "register", "collection": "organisations",
                                        "body": {"id": f"bench-{run}-{r}", "name": f"Agency {r}"}}
                                       for r in range(max(RECORDS, PER_THREAD * batch_connections))])
            if "appends" in bars:
                rows += append_rows(urls["bare"], base, values, args)
            if "batch" in bars:
                batch = wrk(base, "/", BATCH_LUA % {**values, "year": 2000}, args.seconds,
                            connections=batch_connections, threads=batch_connections)
                events = batch["rate"] * BATCH_EVENTS
                rows.append(["batch writes", f"{BATCH_EVENTS} a request, {batch_connections} conns",
                             f"{events:,.0f} events/s", "",
                             ">= 10,000/s", _verdict(events >= 10_000)])
            if "view" in bars:
                rows += view_rows(base, f"/v1/organisations/bench-{run}-1", GET_LUA % values, args)

        if "lists" in bars:
            rows += list_rows(urls, values, args)

    print()
    print(table(["bar", "baseline", "measured", "ratio", "target", "verdict"], rows))


def append_rows(bare_url: str, base: str, values: dict[str, Any], args: argparse.Namespace) -> list[list[Any]]:
    """Appends over HTTP against the bare library, in turns; each round's valid days follow the last's."""
    bare, http = [], []
    for number in range(args.rounds):
        bare.append(bare_rate(bare_url, args.seconds))
        http.append(wrk(base, "/", APPEND_LUA % {**values, "year": 1000 + 50 * number}, args.seconds))
    ratio = sum(h["rate"] for h in http) / sum(bare)
    p99 = max(h["p99"] for h in http)
    rounds = ", ".join(f"{h['rate']:,.0f}/{b:,.0f}" for h, b in zip(http, bare, strict=True))
    return [["appends vs bare library", f"{sum(bare) / len(bare):,.0f}/s bare",
             f"{sum(h['rate'] for h in http) / len(http):,.0f}/s http", f"{ratio:.2f}x", ">= 1.0x",
             _verdict(ratio >= 1.0)],
            ["  rounds (http/bare)", "", rounds, "", "", ""],
            ["append p99 latency", "", f"{p99:.0f} ms (worst round)", "", "<= 50 ms", _verdict(p99 <= 50)]]


def view_rows(base: str, path: str, script: str, args: argparse.Namespace) -> list[list[Any]]:
    """The record view against /healthz on the same server, in turns (the machine's pace drifts)."""
    health, view = [], []
    for _ in range(args.rounds):
        health.append(wrk(base, "/healthz", script, args.seconds)["rate"])
        view.append(wrk(base, path, script, args.seconds)["rate"])
    ratio = sum(view) / sum(health)
    rounds = ", ".join(f"{v:,.0f}/{h:,.0f}" for v, h in zip(view, health, strict=True))
    return [["record view vs /healthz", f"{sum(health) / len(health):,.0f}/s healthz",
             f"{sum(view) / len(view):,.0f}/s view", f"{ratio:.2f}x", ">= 0.6x", _verdict(ratio >= 0.6)],
            ["  rounds (view/healthz)", "", rounds, "", "", ""]]


def list_rows(urls: dict[str, str], values: dict[str, Any], args: argparse.Namespace) -> list[list[Any]]:
    """The filtered list page at 50,000 agreements against 500: both servers up, measured in turns."""
    with ExitStack() as stack:
        bases = {}
        for size, name in zip(LIST_SIZES, ("list_small", "list_large"), strict=True):
            base, token = stack.enter_context(served(urls[name], args.workers, args.threads))
            post_batches(base, token, agreements(size))
            bases[size] = (base, GET_LUA % {**values, "token": token})
        p50s: dict[int, list[float]] = {size: [] for size in LIST_SIZES}
        for _ in range(args.rounds):
            for size in LIST_SIZES:
                base, script = bases[size]
                p50s[size].append(wrk(base, "/v1/agreements?party=NO&limit=100", script, args.seconds)["p50"])
    small, large = (sum(p50s[size]) / len(p50s[size]) for size in LIST_SIZES)
    ratio = large / small
    rounds = ", ".join(f"{big:.1f}/{little:.1f}" for big, little in zip(p50s[LIST_SIZES[1]], p50s[LIST_SIZES[0]],
                                                                          strict=True))
    return [["filtered list page", f"{small:.1f} ms at {LIST_SIZES[0]:,}", f"{large:.1f} ms at {LIST_SIZES[1]:,}",
             f"{ratio:.2f}x", "<= 2x", _verdict(ratio <= 2.0)],
            ["  rounds (p50 ms, large/small)", "", rounds, "", "", ""]]


def _verdict(met: bool) -> str:
    return "met" if met else "MISSES"


if __name__ == "__main__":
    main()
