"""An entry's canonical text, made before the log's lock, hashes as the whole envelope does."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.log.chain import EntryText, envelope_hash

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**62), 2**62) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Keys around those the log adds (position, prev_hash, recorded_at), so every gap is exercised.
KEYS = st.sampled_from(["actor", "data", "id", "kind", "note", "pos", "positions", "pr", "prev", "prev_hashes",
                        "record", "recorded", "recorded_at_", "sources", "type", "valid", "version", "é", "ﬀ"])


@settings(max_examples=300, deadline=None)
@given(entry=st.dictionaries(KEYS | st.text(max_size=12), JSON, max_size=10),
       position=st.integers(1, 2**62), prev_hash=st.text(min_size=1, max_size=64), recorded_at=st.text(max_size=30))
def test_the_prepared_text_hashes_as_the_envelope(entry: dict[str, Any], position: int, prev_hash: str,
                                                  recorded_at: str) -> None:
    entry = {key: value for key, value in entry.items() if key not in ("position", "prev_hash", "recorded_at", "hash")}
    envelope = {**entry, "position": position, "recorded_at": recorded_at, "prev_hash": prev_hash}
    assert EntryText(entry).hash(position, prev_hash, recorded_at) == envelope_hash(envelope)


def test_a_changed_field_changes_the_hash() -> None:
    entry = {"id": "e", "record": "r", "data": {"title": "Agreement"}, "note": None}
    text = EntryText(entry)
    assert text.hash(1, "0" * 64, "2026-01-01T00:00:00Z") != EntryText({**entry, "note": "x"}).hash(
        1, "0" * 64, "2026-01-01T00:00:00Z")
    assert text.hash(1, "0" * 64, "2026-01-01T00:00:00Z") != text.hash(2, "0" * 64, "2026-01-01T00:00:00Z")
