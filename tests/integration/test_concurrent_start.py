"""Processes that start at once on a new store (gunicorn workers, a projector) all come up."""

from __future__ import annotations

import multiprocessing

from registry.bootstrap import bootstrap
from registry.settings import Settings


def start(url: str) -> int:
    registry = bootstrap(Settings(database=url))
    try:
        return registry.reader.head()["position"]
    finally:
        registry.close()


def test_six_processes_starting_together_on_an_empty_store_all_start(store_url: str) -> None:
    # Each creates the store's tables if missing; on PostgreSQL their DDL would race without the setup lock.
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        positions = pool.map(start, [store_url] * 6)
    assert positions == [0] * 6
