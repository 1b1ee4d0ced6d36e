"""Server render time of the pages on the seed, and the timeline page at 10,000 events.

1. The seed, loaded into a fresh store; each page rendered in process through the
   Flask app (the whole request: parse, reader, template), `--repeats` times after a
   warm-up: p50 and p95 per page. Bar (SPEC section 7): p95 at most 100 ms.
2. For context, the same pages over HTTP from `registry serve` (one client, sequential).
3. The seed plus 10,000 events (2,500 organisations, each registered, established and
   renamed twice): the /timeline page (paged, 100 rows, the chart fed only those) and
   its size; the bar does not cover it.

Checks every answer is 200 HTML; never asserts timings.

    python bench/pages.py [--repeats 200] [--events 10000] [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time

import requests
from _common import add_database_argument, engine_name, fresh_stores, percentile, server, table

from registry.seed import seed
from registry.service import Registry
from registry.settings import StoreConfig

BAR_MS = 100.0
PAGES = [
    "/",
    "/agreements",
    "/agreements/ru-eu-readmission-agreement?as_of=2006-06-01",
    "/agreements/ru-eu-readmission-agreement?as_of=2010-06-01",
    "/bodies/ru-eu-readmission-joint-committee",
    "/meetings?status=held",
    "/timeline",
    "/timeline?record=ru-eu-readmission-joint-committee",
    "/changes?from=2006-01-01&to=2011-01-01",
    "/search?q=readmission",
    "/audit",
    "/docs",
]


def app_for(url: str):  # type: ignore[no-untyped-def]
    from api import create_app

    os.environ.pop("REGISTRY_READ_AUTH", None)
    return create_app({"DATABASE": url, "FOLLOW_LOG": False, "READ_AUTH": False})


def timed(get, path: str, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(5):
        get(path)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        status, body = get(path)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200 or b"<html" not in body[:200]:
            raise SystemExit(f"{path}: {status}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--events", type=int, default=10_000)
    add_database_argument(parser)
    args = parser.parse_args()
    print(f"Pages: server render on the seed, {engine_name(args.database)}, {args.repeats} renders per page")
    with fresh_stores(args.database, ["seed", "long"]) as stores:
        seed(Registry(StoreConfig.from_url(stores["seed"])))
        client = app_for(stores["seed"]).test_client()

        def local(path: str) -> tuple[int, bytes]:
            response = client.get(path)
            return response.status_code, response.data

        rows, worst = [], 0.0
        with server(stores["seed"]) as base:
            session = requests.Session()

            def remote(path: str) -> tuple[int, bytes]:
                response = session.get(base + path, timeout=30)
                return response.status_code, response.content

            for path in PAGES:
                inside = timed(local, path, args.repeats)
                over_http = timed(remote, path, max(20, args.repeats // 4))
                p95 = percentile(inside, 0.95)
                worst = max(worst, p95)
                rows.append([path, f"{percentile(inside, 0.5):.1f}", f"{p95:.1f}", f"{percentile(over_http, 0.95):.1f}",
                             "met" if p95 <= BAR_MS else "MISSES"])
        print(table(["page", "p50 ms", "p95 ms", "HTTP p95 ms", f"bar {BAR_MS:.0f} ms"], rows))
        print(f"worst p95 {worst:.1f} ms: {'met' if worst <= BAR_MS else 'MISSES'} (bar: p95 <= {BAR_MS:.0f} ms)")

        registry = Registry(StoreConfig.from_url(stores["long"]))
        seed(registry)
        started = time.perf_counter()
        first = dt.date(1990, 1, 1)
        for number in range(args.events // 4):  # 4 events each: registered, established, renamed twice
            record_id = f"bench-agency-{number:05d}"
            day = first + dt.timedelta(days=number)
            registry.register("organisations", {"id": record_id, "name": f"Agency {number}"}, "bench")
            registry.append("organisations", record_id, {"type": "established", "valid": day.isoformat()}, "bench")
            for rename in (1, 2):
                registry.append("organisations", record_id, {
                    "type": "renamed", "valid": f"{day.year + rename}", "name": f"Agency {number}, name {rename}"},
                    "bench")
        print(f"\nTimeline at {args.events:,} more events (loaded in {time.perf_counter() - started:.0f} s)")
        client = app_for(stores["long"]).test_client()
        rows = []
        last = -(-(args.events * 3 // 4 + 10) // 100)
        for path in ["/timeline", f"/timeline?page={last}", "/timeline?from=2000-01-01&to=2000-12-31",
                     "/timeline?record=bench-agency-00100"]:
            times = timed(local, path, max(10, args.repeats // 10))
            size = len(client.get(path).data)
            rows.append([path, f"{percentile(times, 0.5):.0f}", f"{percentile(times, 0.95):.0f}", f"{size / 1024:.0f}"])
        print(table(["page", "p50 ms", "p95 ms", "HTML KiB"], rows))


if __name__ == "__main__":
    main()
