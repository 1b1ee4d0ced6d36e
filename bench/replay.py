"""Replaying a long log: rebuild against the bare library's read-and-decode, verify, export, and peak memory.

  bare        the `eventsourcing` library alone on the same store: `recorder.select_notifications`
              in batches of 1000 and `mapper.to_domain_event` for each (what any replay pays)
  rebuild     `ViewProjection.rebuild()`: every view loaded again from zero beside the live ones,
              record by record, with worker processes as the registry picks them (one per core
              for a log of 50,000 events or more), then switched to
  verify      `Auditor.verify(projections=False)`: hash chain, positions, versions, the event
              store's own copy of every event
  verify+     `Auditor.verify()`: the same, then the log replayed into a fresh projection
              version and compared with the stored views
  export      `export_lines()` to a file
  import      `import_lines()` of the file (three passes: check the chain, check the store, write)
  catch-up    the live views following the imported log (`projection.catch_up()`)

Each phase runs in a process of its own, so its peak RSS (`os.wait4`) is its alone; the
"idle" row is a process that only opens the store, for scale.

The log: the seed timeline and later knowledge (a suspension, its lifting, a corrected
signature, a retraction) written through the registry and exported, then continued to N
events with a valid hash chain, records in interleaved blocks: agreements signed, in
force, extended, suspended and restored; bodies established and their meetings held;
organisations renamed; about 1% corrections and retractions (which refold their record).
The smaller store imports a prefix of the same file.

Bar (issue #4): rebuild at least half the bare rate; peak memory flat in the log's length.

    python bench/replay.py [--events 1000000] [--database postgresql://...] [--profile rebuild]
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from _common import add_database_argument, engine_name, fresh_stores, table

from registry.audit.transfer import cloud_event, export_lines, import_lines
from registry.bootstrap import bootstrap
from registry.clock import format_instant
from registry.log.chain import GENESIS, envelope_hash
from registry.seed import seed
from registry.settings import Settings, StoreConfig

TARGET = 0.5
SOURCE = "urn:cooperation-registry"
PHASES = ["idle", "import", "catch-up", "bare", "rebuild", "verify", "verify+", "export"]
GROUPS_PER_BLOCK = 50  # a block: 500 records whose events interleave in the log


# The log

def source_log(url: str) -> list[str]:
    """A realistic small log written through the registry: the seed timeline, then later knowledge."""
    registry = bootstrap(Settings(database=url))
    try:
        seed(registry)
        agreement = "ru-eu-readmission-agreement"
        registry.append("agreements", agreement, {"type": "suspended", "valid": "2022-03", "extent": "partial",
                                                  "provisions": ["Article 3"]}, "editor")
        registry.append("agreements", agreement, {"type": "suspension_lifted", "valid": "2023-01-15"}, "editor")
        signed = registry.reader.events(0, 100, record=agreement, type="signed")["items"][0]
        registry.correct(signed["id"], {"changes": {"valid": "2006-05-25", "place": "Sochi"},
                                        "reason": "the summit's date"}, "editor")
        renamed = registry.reader.events(0, 100, record="frontex", type="renamed")["items"][0]
        registry.retract(renamed["id"], {"reason": "no source gives the date"}, "editor")
        return list(export_lines(registry.database))
    finally:
        registry.close()


class Synthesis:
    """Envelopes cloned from the source log's, for new records in interleaved blocks."""

    def __init__(self, lines: list[str]) -> None:
        self.templates: dict[str, dict[str, Any]] = {}  # by type: the sources and shape of a real event
        for line in lines:
            envelope = json.loads(line)["data"]
            self.templates.setdefault(envelope["type"], envelope)
        self.serial = 0

    def event(self, kind: str, type_: str, record: str, version: int, day: dt.date | None,
              data: dict[str, Any]) -> dict[str, Any]:
        self.serial += 1
        valid = day.isoformat() if day else None
        return {**self.templates[type_], "id": str(uuid.UUID(int=self.serial, version=4)), "record": record,
                "kind": kind, "version": version, "valid": valid, "valid_lower": valid, "valid_upper": valid,
                "data": data, "note": None, "actor": "bench"}

    def group(self, number: int) -> list[list[dict[str, Any]]]:
        """One body with four meetings, four agreements and an organisation: each record's events, in order."""
        start = dt.date(1990, 1, 1) + dt.timedelta(days=(number * 37) % 10000)
        records: list[list[dict[str, Any]]] = []
        agreements = [f"agreement-{number}-{n}" for n in range(4)]
        for n, record in enumerate(agreements):
            day = start + dt.timedelta(days=n * 60)
            events = [
                self.event("agreement", "registered", record, 1, None, {
                    "title": f"Agreement on Readmission No. {number}-{n}", "short_title": f"Readmission {number}-{n}",
                    "agreement_type": "agreement", "parties": ["RU", "eu"]}),
                self.event("agreement", "signed", record, 2, day, {"place": "Brussels"}),
                self.event("agreement", "entered_into_force", record, 3, day + dt.timedelta(days=400), {}),
                self.event("agreement", "scope_extended", record, 4, day + dt.timedelta(days=1500),
                           {"scope": "nationals of third countries and stateless persons"}),
                self.event("agreement", "suspended", record, 5, day + dt.timedelta(days=5000),
                           {"extent": "partial", "provisions": ["Article 3"]}),
                self.event("agreement", "suspension_lifted", record, 6, day + dt.timedelta(days=5400), {}),
            ]
            if (number * 4 + n) % 10 == 0:  # the signature was in fact ten days earlier, in Sochi
                events.append(self.event("agreement", "corrected", record, len(events) + 1, None, {
                    "target": events[1]["id"], "reason": "the summit's date",
                    "changes": {"valid": (day - dt.timedelta(days=10)).isoformat(), "place": "Sochi"}}))
            if (number * 4 + n) % 20 == 7:  # the extension was never made
                events.append(self.event("agreement", "retracted", record, len(events) + 1, None, {
                    "target": events[3]["id"], "reason": "no source gives the extension"}))
            records.append(events)
        body = f"joint-committee-{number}"
        records.append([
            self.event("body", "registered", body, 1, None, {
                "title": f"Joint Committee on readmission No. {number}", "parties": ["RU", "eu"],
                "established_by": agreements[0]}),
            self.event("body", "established", body, 2, start + dt.timedelta(days=420), {}),
        ])
        for ordinal in range(1, 5):
            meeting = f"{body}-{ordinal}"
            records.append([
                self.event("meeting", "registered", meeting, 1, None, {
                    "title": f"Meeting {ordinal} of Joint Committee No. {number}", "series": body,
                    "ordinal": ordinal}),
                self.event("meeting", "held", meeting, 2, start + dt.timedelta(days=420 + 180 * ordinal),
                           {"place": ("Brussels", "Moscow", "Sofia", "Vienna")[ordinal - 1]}),
            ])
        organisation = f"migration-service-{number}"
        records.append([
            self.event("organisation", "registered", organisation, 1, None,
                       {"name": f"Migration Service No. {number}"}),
            *[self.event("organisation", "renamed", organisation, version, start + dt.timedelta(days=700 * version),
                         {"name": f"Migration Service No. {number}, renamed {version - 1}"})
              for version in range(2, 5)],
        ])
        return records

    def envelopes(self) -> Iterator[dict[str, Any]]:
        """Endless: block after block, each record's events interleaved with its block's."""
        for block in itertools.count():
            records = [events for g in range(GROUPS_PER_BLOCK) for events in self.group(block * GROUPS_PER_BLOCK + g)]
            for step in range(max(len(events) for events in records)):
                for events in records:
                    if step < len(events):
                        yield events[step]


def synthesise(lines: list[str], count: int, path: Path) -> None:
    """The source log, continued to `count` events, written with a valid hash chain."""
    synthesis = Synthesis(lines)
    prev_hash, recorded = GENESIS, dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with path.open("w", encoding="utf-8") as out:
        head = [json.loads(line)["data"] for line in lines]
        for position, envelope in enumerate(itertools.chain(head, synthesis.envelopes()), start=1):
            if position > count:
                break
            envelope.update(position=position, prev_hash=prev_hash,
                            recorded_at=format_instant(recorded + dt.timedelta(milliseconds=position)))
            envelope["hash"] = prev_hash = envelope_hash(envelope)
            out.write(json.dumps(cloud_event(envelope, SOURCE), ensure_ascii=False) + "\n")


# The phases, each in a process of its own

def run_phase(phase: str, url: str, file: str, count: int) -> int:
    """Run one phase; returns how many events it went through."""
    if phase == "bare":
        from registry.log.store import RegistryStore

        store = RegistryStore(StoreConfig.from_url(url))
        done, start = 0, 1
        while True:
            notifications = store.recorder.select_notifications(start, 1000)
            if not notifications:
                return done
            for notification in notifications:
                store.mapper.to_domain_event(notification)
            done += len(notifications)
            start = notifications[-1].id + 1
    registry = bootstrap(Settings(database=url))
    if phase == "idle":
        return int(registry.reader.head()["position"])
    if phase == "import":
        def read() -> Iterable[str]:
            with open(file, encoding="utf-8") as handle:
                yield from itertools.islice(handle, count)

        return import_lines(registry.store, read)["written"]
    if phase == "catch-up":
        return registry.projection.catch_up(batch=5000)
    if phase == "rebuild":
        return registry.projection.rebuild()[1]
    if phase in ("verify", "verify+"):
        report = registry.auditor.verify(projections=phase == "verify+")
        if not report["ok"]:
            raise SystemExit(f"verify found {report['first_bad']}")
        return int(report["checked"])
    if phase == "export":
        with open(os.devnull, "w", encoding="utf-8") as out:
            return sum(out.write(line) > 0 for line in export_lines(registry.database))
    raise SystemExit(f"no phase {phase!r}")


def phase_main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        events = profiler.runcall(run_phase, args.phase, args.store, args.file, args.count)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(25)
    else:
        events = run_phase(args.phase, args.store, args.file, args.count)
    print(json.dumps({"events": events, "seconds": time.perf_counter() - started}))


def measure(phase: str, url: str, file: Path, count: int, profile: bool) -> dict[str, float]:
    """Run a phase in a child process: events, seconds, and the child's own peak RSS in MiB."""
    command = [sys.executable, __file__, "--phase", phase, "--store", url, "--file", str(file), "--count", str(count)]
    if profile:
        command += ["--profile", phase]
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(command, stdout=out)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"phase {phase} failed ({child.returncode}): {text}")
    result = json.loads(text.strip().splitlines()[-1])
    return {**result, "rss": usage.ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the long log (the short: a tenth)")
    parser.add_argument("--profile", choices=PHASES, help="print a cProfile of this phase (long log) to stderr")
    add_database_argument(parser)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase_main(args)
        return

    sizes = [args.events // 10, args.events]
    print(f"Replay on {engine_name(args.database)}: logs of {sizes[0]:,} and {sizes[1]:,} events", flush=True)
    rows, ratios = [], []
    with tempfile.TemporaryDirectory(prefix="registry-replay-") as folder, \
            fresh_stores(args.database, ["source", "short", "long"]) as stores:
        file = Path(folder) / "log.ndjson"
        started = time.perf_counter()
        synthesise(source_log(stores["source"]), args.events, file)
        print(f"synthesised {args.events:,} events ({file.stat().st_size / 2**20:,.0f} MiB)"
              f" in {time.perf_counter() - started:.0f}s", flush=True)
        for name, size in zip(("short", "long"), sizes, strict=True):
            results = {}
            for phase in PHASES:
                profile = args.profile == phase and size == sizes[-1]
                results[phase] = measure(phase, stores[name], file, size, profile)
                print(f"  {size:,} events: {phase} {results[phase]['seconds']:.1f}s", flush=True)
            for phase, result in results.items():
                rate = result["events"] / result["seconds"] if phase != "idle" else None
                events = f"{result['events']:,}" if phase != "idle" else "-"
                rows.append([f"{size:,}", phase, events, f"{result['seconds']:.1f}",
                             f"{rate:,.0f}" if rate else "-", f"{result['rss']:.0f}"])
            ratios.append((size, (results["rebuild"]["events"] / results["rebuild"]["seconds"])
                           / (results["bare"]["events"] / results["bare"]["seconds"])))
    print()
    print(table(["log", "phase", "events", "seconds", "events/s", "peak RSS MiB"], rows))
    print()
    for size, ratio in ratios:
        verdict = "meets" if ratio >= TARGET else "MISSES"
        print(f"rebuild / bare read-and-decode at {size:,} events: {ratio:.2f}x ({verdict} the target {TARGET}x)")


if __name__ == "__main__":
    main()
