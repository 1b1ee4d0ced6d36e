"""The log follower: one per process, fanning new events out to any number of subscribers.

Runs on SQLite (poll + in-process wake) and PostgreSQL (LISTEN/NOTIFY with a timed wait).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from registry.bootstrap import bootstrap
from registry.feeds.follower import EventFilter, LogFollower, Subscription, TooManyStreams
from registry.seed import seed
from registry.service import Registry
from registry.settings import Settings

COMMITTEE_17 = "ru-eu-readmission-joint-committee-17"
SOFIA = "ru-eu-migration-dialogue-sofia-2018"
WAIT = 20.0  # seconds a subscriber waits for an event before the test fails


@pytest.fixture
def seeded(registry: Registry) -> Iterator[Registry]:
    seed(registry)
    yield registry
    registry.feed.close()


def take(subscription: Subscription, count: int) -> list[dict[str, Any]]:
    """The next `count` events, waiting for each at most WAIT seconds."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        batch = subscription.next(WAIT)
        assert batch, f"no event within {WAIT}s; got {[e['position'] for e in got]}"
        got += batch
    return got


def recommend(registry: Registry, subject: str) -> dict[str, Any]:
    return registry.append("bodies", "ru-eu-readmission-joint-committee", {
        "type": "recommendation_adopted", "valid": "2017-10-04", "subject": subject,
        "meeting": COMMITTEE_17}, "editor")


def test_a_subscriber_gets_new_events_as_they_commit(seeded: Registry) -> None:
    head = seeded.reader.head()["position"]
    subscription = seeded.feed.subscribe(head, EventFilter())

    # The Joint Committee adopts a recommendation at its 17th meeting; the subscriber hears of it.
    adopted = recommend(seeded, "exchange of contact points")
    [received] = take(subscription, 1)
    assert received == adopted
    subscription.close()


def test_a_late_subscriber_gets_exactly_what_it_missed_in_order_then_live(seeded: Registry) -> None:
    # A subscriber last saw the Sofia session being registered; everything after it follows in order.
    log = seeded.reader.events(0, 1000)["items"]
    sofia_registered = next(e for e in log if e["record"] == SOFIA and e["type"] == "registered")
    subscription = seeded.feed.subscribe(sofia_registered["position"], EventFilter())
    missed = take(subscription, len(log) - sofia_registered["position"])
    assert [e["position"] for e in missed] == list(range(sofia_registered["position"] + 1, len(log) + 1))
    assert missed == log[sofia_registered["position"]:]

    # Then it follows live.
    adopted = recommend(seeded, "statistics on readmission applications")
    assert take(subscription, 1) == [adopted]
    subscription.close()


def test_filters_pass_only_matching_events_and_the_cursor_still_moves(seeded: Registry) -> None:
    meetings = seeded.feed.subscribe(0, EventFilter.of(kinds=["meeting"]))
    sofia_held = seeded.feed.subscribe(0, EventFilter.of(types=["held"], records=[SOFIA]))

    got = take(meetings, 4)  # the two seed meetings: registered and held each
    assert [(e["record"], e["type"]) for e in got] == [
        (COMMITTEE_17, "registered"), (COMMITTEE_17, "held"), (SOFIA, "registered"), (SOFIA, "held")]
    [held] = take(sofia_held, 1)
    assert held["valid"] == "2018-04-04/2018-04-05"

    # A body event matches neither; nothing arrives, and the cursors move past it.
    head = recommend(seeded, "joint training for border officials")["position"]
    for subscription in (meetings, sofia_held):
        for _ in range(int(WAIT / 0.5)):
            if subscription.cursor == head:
                break
            assert subscription.next(0.5) == []
        assert subscription.cursor == head
    meetings.close()
    sofia_held.close()


def test_one_follower_fans_out_to_many_subscribers_and_closing_frees_them(seeded: Registry) -> None:
    head = seeded.reader.head()["position"]
    subscriptions = [seeded.feed.subscribe(head, EventFilter()) for _ in range(50)]
    assert seeded.feed.streams == 50
    received: list[list[dict[str, Any]]] = [[] for _ in subscriptions]

    def listen(index: int) -> None:
        received[index] = take(subscriptions[index], 1)

    threads = [threading.Thread(target=listen, args=(i,)) for i in range(len(subscriptions))]
    for thread in threads:
        thread.start()
    adopted = recommend(seeded, "readmission of third-country nationals")
    for thread in threads:
        thread.join(WAIT)
    assert all(got == [adopted] for got in received)

    for subscription in subscriptions:
        subscription.close()
        subscription.close()  # closing twice is harmless
    assert seeded.feed.streams == 0


def test_a_limit_refuses_streams_beyond_it_until_one_closes(seeded: Registry) -> None:
    first = seeded.feed.subscribe(0, EventFilter(), limit=2)
    seeded.feed.subscribe(0, EventFilter(), limit=2)
    with pytest.raises(TooManyStreams):
        seeded.feed.subscribe(0, EventFilter(), limit=2)
    first.close()
    seeded.feed.subscribe(0, EventFilter(), limit=2).close()


def test_a_subscriber_far_behind_the_buffer_reads_the_rest_from_the_store(registry: Registry) -> None:
    seed(registry)
    follower = LogFollower(registry.database, registry.config, buffer=3).start()
    subscription = follower.subscribe(registry.reader.head()["position"], EventFilter())
    adopted = [recommend(registry, f"recommendation {n}") for n in range(1, 8)]
    take(subscription, 7)

    # A subscriber from position 0 needs 27 events; the buffer holds 3: the rest come from the store.
    behind = follower.subscribe(0, EventFilter())
    got = take(behind, len(registry.reader.events(0, 1000)["items"]))
    assert [e["position"] for e in got] == list(range(1, len(got) + 1))
    assert got[-7:] == adopted
    follower.close()
    assert behind.next(1.0) is None  # a closed follower ends its subscribers


def test_an_event_written_by_another_process_reaches_this_ones_subscribers(store_url: str) -> None:
    # Two registries on one store stand for two processes: each has its own follower.
    writer = bootstrap(Settings(database=store_url))
    reader = bootstrap(Settings(database=store_url))
    seed(writer)
    subscription = reader.feed.subscribe(writer.reader.head()["position"], EventFilter())

    adopted = recommend(writer, "exchange of liaison officers")
    assert take(subscription, 1) == [adopted]
    subscription.close()
    reader.feed.close()
    writer.close()
    reader.close()


def test_a_lost_notification_delays_an_event_but_never_stalls_the_follower(seeded: Registry) -> None:
    # This follower listens on a channel nobody notifies (on SQLite it polls anyway): only its timed
    # wait brings it back to the log.
    deaf = LogFollower(seeded.database, seeded.config, channel="registry_nobody_notifies").start()
    subscription = deaf.subscribe(seeded.reader.head()["position"], EventFilter())
    adopted = recommend(seeded, "exchange of statistics")
    assert take(subscription, 1) == [adopted]
    deaf.close()


def test_without_streams_the_follower_reads_only_how_far_the_log_reaches(
        seeded: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.feeds import follower as module

    pages_read: list[int] = []
    original = module.read_range
    monkeypatch.setattr(module, "read_range",
                        lambda cursor, after, **kw: pages_read.append(after) or original(cursor, after, **kw))
    woken = threading.Event()
    follower = LogFollower(seeded.database, seeded.config, channel="registry_nobody_notifies", wait=0.05)
    follower.on_new_events(woken.set)
    follower.start()
    before = follower.head

    # Webhook delivery alone listens: it is woken and the head moves, but no event is read.
    adopted = [recommend(seeded, f"recommendation {n}") for n in range(1, 4)]
    follower.wake()
    assert woken.wait(WAIT)
    deadline = time.monotonic() + WAIT
    while follower.head < adopted[-1]["position"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert follower.head == adopted[-1]["position"] > before
    assert pages_read == []

    # A stream from before those events gets each of them once, in order, then follows live.
    subscription = follower.subscribe(before, EventFilter())
    assert take(subscription, 3) == adopted
    live = recommend(seeded, "exchange of contact points")
    follower.wake()
    assert take(subscription, 1) == [live]
    assert pages_read  # with a stream, the follower reads the events themselves
    subscription.close()
    follower.close()
