"""As-of views against history length: one record with 10 events beside one with 10,000.

Both are organisations renamed over and over (the view keeps its size), in one
store, loaded through `Registry.append`. The short record's renames are spread
through the long one's, on the same span of valid days and the same stretch of
the log, so the two differ only in their own history length.

1. `reader.view(record, as_of, known_at)` in process, short and long timed
   alternately, on several as_of days; once as known now and once as known at
   the middle of each record's history (the instant its middle rename was recorded).
2. The short record again, alone in a store of its own against beside the long
   one: what the length of the whole log costs a view.
3. The views of 1. over HTTP, against `registry serve` on the same store.

Bar (SPEC section 7): the long record's view within 1.5x of the short one's.
Checks every view's name against the expected one; never asserts timings.

    python bench/asof.py [--events 10000] [--repeats 300] [--http-repeats 150] [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from _common import add_database_argument, engine_name, fresh_stores, percentile, server, table

from registry.bootstrap import bootstrap
from registry.service import Registry
from registry.settings import Settings

FIRST_DAY = dt.date(1990, 1, 1)
TARGET = 1.5


@dataclass
class History:
    """A record and what it should look like on any day, as known at any instant."""

    record_id: str
    renames: list[tuple[dt.date, str, str]] = field(default_factory=list)  # (valid day, name, recorded_at)

    def expected(self, day: dt.date, known_at: str | None) -> str:
        name = self.record_id
        for valid, new_name, recorded_at in self.renames:
            if valid <= day and (known_at is None or recorded_at <= known_at):
                name = new_name
        return name

    def middle_instant(self) -> str:
        return self.renames[len(self.renames) // 2][2]


def load(registry: Registry, long_events: int, short_events: int) -> tuple[History, History]:
    """Register both records and rename them day after day; returns their histories."""
    short, long = History("short-history-agency"), History("long-history-agency")
    for history in (short, long):
        registry.register("organisations", {"id": history.record_id, "name": history.record_id}, "bench")
    stride = long_events // short_events
    started = time.perf_counter()
    for i in range(long_events):
        day = FIRST_DAY + dt.timedelta(days=i)
        _rename(registry, long, day, f"Long History Agency, name {i:05d}")
        if i % stride == stride // 2 and len(short.renames) < short_events:
            _rename(registry, short, day, f"Short History Agency, name {i:05d}")
        if (i + 1) % 1000 == 0:
            rate = (i + 1) / (time.perf_counter() - started)
            print(f"  loaded {i + 1:,} of {long_events:,} events ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    return short, long


def load_alone(registry: Registry, short: History) -> History:
    """The short record's renames again, in a store with nothing else."""
    alone = History(short.record_id)
    registry.register("organisations", {"id": alone.record_id, "name": alone.record_id}, "bench")
    for day, name, _ in short.renames:
        _rename(registry, alone, day, name)
    return alone


def _rename(registry: Registry, history: History, day: dt.date, name: str) -> None:
    envelope = registry.append("organisations", history.record_id,
                               {"type": "renamed", "valid": day.isoformat(), "name": name}, "bench")
    history.renames.append((day, name, envelope["recorded_at"]))


def as_of_days(long_events: int) -> list[tuple[str, dt.date]]:
    last = FIRST_DAY + dt.timedelta(days=long_events - 1)
    span = (last - FIRST_DAY).days
    return [
        ("early (10%)", FIRST_DAY + dt.timedelta(days=span // 10)),
        ("middle (50%)", FIRST_DAY + dt.timedelta(days=span // 2)),
        ("late (90%)", FIRST_DAY + dt.timedelta(days=span * 9 // 10)),
        ("after the last", last + dt.timedelta(days=365)),
    ]


View = Callable[[History, dt.date, "str | None"], str]


def side_by_side(first: tuple[History, View], second: tuple[History, View], days: list[tuple[str, dt.date]],
                 middle: bool, repeats: int) -> list[list[Any]]:
    """Table rows: p50/p90 in ms of both views and the ratios second/first, timed alternately."""
    rows = []
    for label, day in days:
        times: list[list[float]] = [[], []]
        known = [h.middle_instant() if middle else None for h, _ in (first, second)]
        expected = [h.expected(day, k) for (h, _), k in zip((first, second), known, strict=True)]
        for i in range(repeats):
            for j in (0, 1) if i % 2 else (1, 0):
                history, view = (first, second)[j]
                started = time.perf_counter()
                name = view(history, day, known[j])
                times[j].append((time.perf_counter() - started) * 1000)
                if name != expected[j]:
                    raise SystemExit(f"{history.record_id} as of {day}: got {name!r}, expected {expected[j]!r}")
        a50, a90 = percentile(times[0], 0.5), percentile(times[0], 0.9)
        b50, b90 = percentile(times[1], 0.5), percentile(times[1], 0.9)
        rows.append([label, "middle" if middle else "now", f"{a50:.3f}", f"{a90:.3f}", f"{b50:.3f}", f"{b90:.3f}",
                     f"{b50 / a50:.2f}x", f"{b90 / a90:.2f}x"])
    return rows


def report(title: str, names: tuple[str, str], rows: list[list[Any]]) -> None:
    a, b = names
    headers = ["as_of", "known_at", f"{a} p50", f"{a} p90", f"{b} p50", f"{b} p90", "p50 ratio", "p90 ratio"]
    print(f"\n{title} (ms; ratio = {b}/{a})")
    print(table(headers, rows))
    for middle in sorted({r[1] for r in rows}, reverse=True):
        worst = max(float(r[6].rstrip("x")) for r in rows if r[1] == middle)
        verdict = "meets" if worst <= TARGET else "MISSES"
        print(f"worst p50 ratio, known_at {middle}: {worst:.2f}x ({verdict} the {TARGET}x bar)")


def in_process(registry: Registry) -> View:
    def view(history: History, day: dt.date, known_at: str | None) -> str:
        instant = dt.datetime.fromisoformat(known_at) if known_at else None
        return str(registry.reader.view(history.record_id, day, instant)["name"])

    return view


def over_http(session: requests.Session, base: str) -> View:
    def view(history: History, day: dt.date, known_at: str | None) -> str:
        params = {"as_of": day.isoformat(), **({"known_at": known_at} if known_at else {})}
        response = session.get(f"{base}/v1/organisations/{history.record_id}", params=params, timeout=30)
        response.raise_for_status()
        return str(response.json()["name"])

    return view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--events", type=int, default=10_000, help="events in the long record (default 10000)")
    parser.add_argument("--short-events", type=int, default=10, help="events in the short record (default 10)")
    parser.add_argument("--repeats", type=int, default=300, help="in-process views per record and case")
    parser.add_argument("--http-repeats", type=int, default=150, help="HTTP views per record and case (0: skip)")
    args = parser.parse_args()

    print(f"As-of views: {args.short_events} vs {args.events:,} events in one record, "
          f"{engine_name(args.database)}", flush=True)
    with fresh_stores(args.database, ["asof", "alone"]) as urls:
        registry = bootstrap(Settings(database=urls["asof"]))
        started = time.perf_counter()
        short, long = load(registry, args.events, args.short_events)
        print(f"loaded {args.events + args.short_events:,} events through Registry.append in "
              f"{time.perf_counter() - started:.0f}s", flush=True)
        days = as_of_days(args.events)
        view = in_process(registry)
        rows = [*side_by_side((short, view), (long, view), days, False, args.repeats),
                *side_by_side((short, view), (long, view), days, True, args.repeats)]
        report("1. reader.view(record, as_of, known_at), in process", ("short", "long"), rows)

        # The same short record in a store of its own: what the length of the whole log costs.
        alone_registry = bootstrap(Settings(database=urls["alone"]))
        alone = load_alone(alone_registry, short)
        rows = [*side_by_side((alone, in_process(alone_registry)), (short, view), days, False, args.repeats),
                *side_by_side((alone, in_process(alone_registry)), (short, view), days, True, args.repeats)]
        report(f"2. the short record alone in its store vs beside {args.events:,} other events, in process",
               ("alone", "beside"), rows)
        alone_registry.close()
        registry.close()

        if args.http_repeats:
            with server(urls["asof"]) as base, requests.Session() as session:
                view = over_http(session, base)
                rows = [*side_by_side((short, view), (long, view), days, False, args.http_repeats),
                        *side_by_side((short, view), (long, view), days, True, args.http_repeats)]
                report("3. GET /v1/organisations/{id}?as_of=...&known_at=..., registry serve", ("short", "long"),
                       rows)

if __name__ == "__main__":
    main()
