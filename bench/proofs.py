"""The verifiable log's costs, measured side by side in one run.

  1. An inclusion proof at 1,000 leaves and at 1,000,000, each tree in a store of its
     own, random positions, the two sizes taking turns in rounds: in process
     (`registry.audit.checkpoints.inclusion`; wall clock, and this process's CPU time)
     and over HTTP (GET /v1/audit/proof/inclusion on `registry serve`, one keep-alive
     client). Each store is served (and seeded with
     the migration timeline, 20 events); its tree is then grown to its size by
     `registry.log.merkle.add_leaves` (the call every append makes in its transaction),
     10,000 leaves at a time over random event hashes: a proof reads only the tree, so
     the events themselves are not needed to time it. Bar (SPEC section 7): 1,000,000
     within 1.5x of 1,000.
  2. Appends (`Registry.register`, one event per transaction, one thread) with the
     tree kept, beside the same appends with the tree's one call left out, each on a
     fresh store, taking turns in rounds.

    python bench/proofs.py [--leaves 1000000] [--proofs 2000] [--appends 300] [--rounds 4]
                           [--database postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from functools import partial

import requests
from _common import add_database_argument, engine_name, fresh_stores, server, table

import registry.log.chain as chain
from registry.audit.checkpoints import inclusion
from registry.bootstrap import bootstrap
from registry.log import merkle
from registry.service import Registry
from registry.settings import Settings

SMALL = 1000
BATCH = 10_000
BAR = 1.5


def grow_tree(registry: Registry, leaves: int) -> float:
    """Grow the store's tree to `leaves` leaves; returns the seconds taken."""
    started = time.perf_counter()
    with registry.database.read() as cursor:
        size = merkle.tree_size(cursor)
    for start in range(size, leaves, BATCH):
        positions = range(start + 1, min(start + BATCH, leaves) + 1)
        batch = [{"position": p, "hash": os.urandom(32).hex()} for p in positions]
        with registry.database.write() as cursor:
            merkle.add_leaves(cursor, batch)
    return time.perf_counter() - started


def proof_cost(prove: Callable[[int, int], object], leaves: int, count: int, rng: random.Random,
               clock: Callable[[], float]) -> float:
    """Mean seconds per inclusion proof of a random position in the tree of `leaves`, by `clock`."""
    positions = [rng.randint(1, leaves) for _ in range(count)]
    started = clock()
    for position in positions:
        prove(position, leaves)
    return (clock() - started) / count


def in_process(registry: Registry) -> Callable[[int, int], object]:
    return lambda position, size: inclusion(registry.database, position, size)


def over_http(session: requests.Session, base: str) -> Callable[[int, int], object]:
    def prove(position: int, size: int) -> object:
        response = session.get(f"{base}/v1/audit/proof/inclusion", params={"position": position, "size": size})
        response.raise_for_status()
        return response.json()

    return prove


def report(title: str, small: list[float], large: list[float], leaves: int) -> None:
    cost_small, cost_large = statistics.median(small), statistics.median(large)
    ratio = cost_large / cost_small
    print()
    print(f"{title} (median of rounds)")
    print(table(["leaves", "ms per proof"], [[f"{SMALL:,}", f"{cost_small * 1000:.3f}"],
                                             [f"{leaves:,}", f"{cost_large * 1000:.3f}"]]))
    print(f"ratio {ratio:.2f}x (bar: at most {BAR}x) -> {'met' if ratio <= BAR else 'NOT met'}", flush=True)


def append_rate(registry: Registry, prefix: str, start: int, count: int) -> float:
    started = time.perf_counter()
    for i in range(start, start + count):
        registry.register("organisations", {"id": f"{prefix}-{i:06d}", "name": f"Agency {i}"}, "bench")
    return count / (time.perf_counter() - started)


def without_tree(run: Callable[[], float]) -> float:
    kept = chain.add_leaves
    chain.add_leaves = lambda cursor, envelopes: None
    try:
        return run()
    finally:
        chain.add_leaves = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--leaves", type=int, default=1_000_000, help="leaves of the large tree (default 1000000)")
    parser.add_argument("--proofs", type=int, default=2000, help="proofs per size and round (default 2000)")
    parser.add_argument("--appends", type=int, default=300, help="appends per case and round (default 300)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(9162)

    print(f"Verifiable log, {engine_name(args.database)}", flush=True)
    with fresh_stores(args.database, ["small", "large", "with_tree", "without_tree"]) as urls:
        with server(urls["small"]) as small_url, server(urls["large"]) as large_url, \
                requests.Session() as session:
            small, large = (bootstrap(Settings(database=urls[name])) for name in ("small", "large"))
            grow_tree(small, SMALL)
            seconds = grow_tree(large, args.leaves)
            print(f"grew a tree to {args.leaves:,} leaves in {seconds:.0f}s", flush=True)
            cases = {  # CPU time too: on a shared machine the wall clock also measures the neighbours
                "in process, wall clock": (in_process(small), in_process(large), time.perf_counter),
                "in process, CPU time": (in_process(small), in_process(large), time.process_time),
                "over HTTP, wall clock": (over_http(session, small_url), over_http(session, large_url),
                                          time.perf_counter),
            }
            for title, (prove_small, prove_large, clock) in cases.items():
                costs: dict[str, list[float]] = {"small": [], "large": []}
                for _ in range(args.rounds):
                    costs["small"].append(proof_cost(prove_small, SMALL, args.proofs, rng, clock))
                    costs["large"].append(proof_cost(prove_large, args.leaves, args.proofs, rng, clock))
                report(f"1. Inclusion proof, {title}", costs["small"], costs["large"], args.leaves)
            small.close()
            large.close()

        kept, bare = (bootstrap(Settings(database=urls[name])) for name in ("with_tree", "without_tree"))
        rates: dict[str, list[float]] = {"with": [], "without": []}
        for round_ in range(args.rounds):
            start = round_ * args.appends
            order = ["with", "without"] if round_ % 2 == 0 else ["without", "with"]  # each goes first in turn
            for case in order:
                if case == "with":
                    rates[case].append(append_rate(kept, "kept", start, args.appends))
                else:
                    rates[case].append(without_tree(partial(append_rate, bare, "bare", start, args.appends)))
        kept.close()
        bare.close()
        with_tree, without = statistics.median(rates["with"]), statistics.median(rates["without"])
        print()
        print("2. Appends, Registry.register in process, one thread (median of rounds)")
        print(table(["case", "events/s"], [["tree kept", f"{with_tree:.0f}"], ["without tree", f"{without:.0f}"]]))
        print(f"with the tree: {with_tree / without:.2f}x the rate without it")


if __name__ == "__main__":
    main()
