"""Append rate over HTTP against the bare `eventsourcing` library, same store kind, same run.

  bare        a minimal Aggregate in a plain `eventsourcing` Application on a fresh
              store: repository.get, one event, save, one save per event (the
              same aggregate cache as the registry's store)
  in-process  `Registry.append` on a fresh store, one thread (for context)
  http        `registry serve` (gunicorn) on a fresh store, several client threads
              with a keep-alive session each, POST /v1/organisations/{id}/events
  healthz     GET /healthz by the same clients on the same server: what the HTTP
              stack itself allows on this machine (for context)

Every path renames a few organisations, each with valid days increasing. The
paths take turns in rounds, so a noisy neighbour slows them alike.
Bar (SPEC section 7): http at least half the bare rate.

    python bench/append_rate.py [--events 3000] [--rounds 5] [--threads 8] [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import requests
from _common import add_database_argument, create_token, engine_name, fresh_stores, server, table
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from registry.bootstrap import bootstrap
from registry.settings import Settings, StoreConfig

FIRST_DAY = dt.date(1990, 1, 1)
TARGET = 0.5
CACHE = "2000"  # the registry store's AGGREGATE_CACHE_MAXSIZE

Rename = tuple[int, str, str]  # (record index, valid day, new name)
Run = Callable[[list[Rename]], float]  # appends the renames; returns the seconds taken


class Agency(Aggregate):
    def __init__(self, name: str) -> None:
        self.name = name
        self.valid: str | None = None

    @event("Renamed")
    def rename(self, name: str, valid: str) -> None:
        self.name = name
        self.valid = valid


class BareApplication(Application[uuid.UUID]):
    name = "bare"


def renames(records: int, events: int) -> list[Rename]:
    """`events` renames spread round-robin over `records`, valid days increasing per record."""
    return [
        (i % records, (FIRST_DAY + dt.timedelta(days=i // records)).isoformat(), f"Bench Agency, name {i:06d}")
        for i in range(events)
    ]


def _timed(append: Callable[[list[Rename]], None]) -> Run:
    def run(batch: list[Rename]) -> float:
        started = time.perf_counter()
        append(batch)
        return time.perf_counter() - started

    return run


@contextmanager
def bare(url: str, records: int) -> Iterator[Run]:
    env = {**StoreConfig.from_url(url).library_env(), "AGGREGATE_CACHE_MAXSIZE": CACHE}
    app = BareApplication(env=env)
    ids = []
    for r in range(records):
        agency = Agency(f"bench-agency-{r}")
        app.save(agency)
        ids.append(agency.id)

    def append(batch: list[Rename]) -> None:
        for r, valid, name in batch:
            agency: Agency = app.repository.get(ids[r])
            agency.rename(name, valid)
            app.save(agency)

    try:
        yield _timed(append)
    finally:
        app.close()


@contextmanager
def in_process(url: str, records: int) -> Iterator[Run]:
    registry = bootstrap(Settings(database=url))
    ids = [f"bench-agency-{r}" for r in range(records)]
    for record_id in ids:
        registry.register("organisations", {"id": record_id, "name": record_id}, "bench")

    def append(batch: list[Rename]) -> None:
        for r, valid, name in batch:
            registry.append("organisations", ids[r], {"type": "renamed", "valid": valid, "name": name}, "bench")

    try:
        yield _timed(append)
    finally:
        registry.close()


@contextmanager
def over_http(url: str, records: int, threads: int, workers: int, server_threads: int) -> Iterator[tuple[Run, Run]]:
    """`registry serve` on the store; yields (appends, GET /healthz) runs by `threads` clients."""
    headers = {"Authorization": f"Bearer {create_token(url, 'bench', 'editor')}"}
    ids = [f"bench-agency-{r}" for r in range(records)]
    with server(url, workers, server_threads) as base:
        with requests.Session() as session:
            for record_id in ids:
                created = session.post(f"{base}/v1/organisations", json={"id": record_id, "name": record_id},
                                       headers=headers, timeout=30)
                if created.status_code != 201:
                    raise SystemExit(f"registering {record_id}: {created.status_code} {created.text}")

        def append(session: requests.Session, r: int, valid: str, name: str) -> requests.Response:
            return session.post(f"{base}/v1/organisations/{ids[r]}/events", timeout=60,
                                json={"type": "renamed", "valid": valid, "name": name})

        def health(session: requests.Session, r: int, valid: str, name: str) -> requests.Response:
            return session.get(f"{base}/healthz", timeout=60)

        yield _clients(headers, threads, append), _clients(headers, threads, health)


Request = Callable[[requests.Session, int, str, str], requests.Response]


def _clients(headers: dict[str, str], threads: int, request: Request) -> Run:
    """A run by `threads` client threads, each with a keep-alive session and the records r % threads == t,
    so no two clients race on one record; timed from the moment all are ready to the last response."""

    def run(batch: list[Rename]) -> float:
        ready, done = threading.Barrier(threads + 1), threading.Barrier(threads + 1)
        failures: list[str] = []

        def client(t: int) -> None:
            mine = [rename for rename in batch if rename[0] % threads == t]
            with requests.Session() as session:
                session.headers.update(headers)
                ready.wait()
                for rename in mine:
                    response = request(session, *rename)
                    if not response.ok:
                        failures.append(f"{response.status_code} {response.text[:200]}")
                done.wait()

        clients = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(threads)]
        for thread in clients:
            thread.start()
        ready.wait()
        started = time.perf_counter()
        done.wait()
        elapsed = time.perf_counter() - started
        for thread in clients:
            thread.join()
        if failures:
            raise SystemExit(f"{len(failures)} of {len(batch)} requests failed, e.g. {failures[0]}")
        return elapsed

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--events", type=int, default=3000, help="timed appends per path (default 3000)")
    parser.add_argument("--rounds", type=int, default=5, help="turns the paths take, events split evenly (default 5)")
    parser.add_argument("--warmup", type=int, default=100, help="untimed appends per path first (default 100)")
    parser.add_argument("--threads", type=int, default=8, help="HTTP client threads (default 8)")
    parser.add_argument("--records", type=int, default=8, help="records appended to (default 8, at least --threads)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--server-threads", type=int, default=8, help="threads per gunicorn worker (default 8)")
    args = parser.parse_args()
    records = max(args.records, args.threads)

    print(f"Append rate: {args.events:,} events to {records} records in {args.rounds} rounds, "
          f"{engine_name(args.database)}; HTTP: {args.threads} client threads, {args.workers} gunicorn workers x "
          f"{args.server_threads} threads; {os.cpu_count()} CPUs", flush=True)
    plan = renames(records, args.warmup + args.events)
    warmup, rounds = plan[:args.warmup], _split(plan[args.warmup:], args.rounds, records)
    labels = ["bare eventsourcing (get, trigger, save)", "Registry.append, in process, 1 thread",
              f"HTTP POST .../events, {args.threads} clients", f"(HTTP GET /healthz, {args.threads} clients)"]
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    with fresh_stores(args.database, ["bare", "inproc", "http"]) as urls, \
            bare(urls["bare"], records) as bare_run, in_process(urls["inproc"], records) as inproc_run, \
            over_http(urls["http"], records, args.threads, args.workers, args.server_threads) as (http_run, ping):
        runs = dict(zip(labels, (bare_run, inproc_run, http_run, ping), strict=True))
        for run in runs.values():
            run(warmup)
        for batch in rounds:
            for label, run in runs.items():
                seconds[label].append(run(batch))

    rates = {label: args.events / sum(times) for label, times in seconds.items()}
    per_round = {label: [len(b) / t for b, t in zip(rounds, times, strict=True)] for label, times in seconds.items()}
    bare_label, http_label = labels[0], labels[2]
    rows: list[list[Any]] = []
    for label in labels:
        ratios = [r / b for r, b in zip(per_round[label], per_round[bare_label], strict=True)]
        rows.append([label, f"{args.events:,}", f"{sum(seconds[label]):.2f}", f"{rates[label]:,.0f}",
                     f"{rates[label] / rates[bare_label]:.2f}x",
                     f"{min(ratios):.2f}-{max(ratios):.2f}x" if len(ratios) > 1 else "-"])
    print()
    print(table(["path", "events", "seconds", "events/s", "vs bare", "vs bare by round"], rows))
    ratio = rates[http_label] / rates[bare_label]
    verdict = "meets" if ratio >= TARGET else "MISSES"
    print(f"http/bare: {ratio:.2f}x ({verdict} the {TARGET}x bar); a no-op GET over the same HTTP stack reaches "
          f"{rates[labels[3]] / rates[bare_label]:.2f}x")


def _split(plan: list[Rename], rounds: int, records: int) -> list[list[Rename]]:
    """Consecutive rounds of whole sweeps over the records, so valid days keep increasing per record."""
    size = max(records, len(plan) // rounds // records * records)
    chunks = [plan[i:i + size] for i in range(0, len(plan), size)]
    if len(chunks) > rounds:
        chunks[rounds - 1:] = [[r for chunk in chunks[rounds - 1:] for r in chunk]]
    return chunks


if __name__ == "__main__":
    main()
