"""Read a Prometheus text scrape into plain numbers."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value; 0 when the scrape has no such sample (a counter not yet counted)."""
    return samples(text).get((name, frozenset(labels.items())), 0.0)
