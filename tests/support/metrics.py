"""Reading /metrics in tests: each sample of the Prometheus text, and one figure by its
labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(figures, name: str, **labels) -> float:
    return figures[(name, tuple(sorted(labels.items())))]
