"""Measuring triage on labelled utterances: per label, per language and per kind, with every miss."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from calls.triage import EMERGENCY, LEVELS, ROUTINE, SEVERITY, URGENT, Assessment, assess

ESCALATING = (EMERGENCY, URGENT)


@dataclass
class Evaluation:
    """Per-label precision/recall, routine false escalations and a confusion matrix over labelled cases."""

    total: int
    confusion: dict[str, dict[str, int]]  # confusion[label][predicted]
    misses: list[dict[str, Any]]  # cases whose predicted level differs from the label
    results: list[tuple[Mapping[str, Any], Assessment]]

    def recall(self, label: str) -> float | None:
        row = self.confusion.get(label, {})
        n = sum(row.values())
        return row.get(label, 0) / n if n else None

    def precision(self, label: str) -> float | None:
        n = sum(row.get(label, 0) for row in self.confusion.values())
        return self.confusion.get(label, {}).get(label, 0) / n if n else None

    def support(self, label: str) -> int:
        return sum(self.confusion.get(label, {}).values())

    @property
    def routine_false_escalation(self) -> float | None:
        """Share of routine cases assessed emergency or urgent (human is not counted: it only routes the call)."""
        row = self.confusion.get(ROUTINE, {})
        n = sum(row.values())
        return sum(row.get(level, 0) for level in ESCALATING) / n if n else None

    def subset(self, keep: Callable[[Mapping[str, Any]], bool]) -> Evaluation:
        """The same measures over the cases `keep` selects (no re-assessment)."""
        return _tally([(case, result) for case, result in self.results if keep(case)])

    def by(self, key: str) -> dict[str, Evaluation]:
        """Evaluations per value of a case field, e.g. "lang" or "kind"."""
        values = sorted({str(case.get(key, "?")) for case, _ in self.results})
        # subset() runs the lambda at once, so it sees this value (mypy cannot type the v=value default).
        return {value: self.subset(lambda case: str(case.get(key, "?")) == value) for value in values}  # noqa: B023


def _tally(results: list[tuple[Mapping[str, Any], Assessment]]) -> Evaluation:
    confusion: dict[str, dict[str, int]] = {label: dict.fromkeys(LEVELS, 0) for label in LEVELS}
    misses = []
    for case, result in results:
        label = case["label"]
        confusion[label][result.level] += 1
        if result.level != label:
            misses.append(
                {
                    **case,
                    "predicted": str(result.level),
                    "reasons": list(result.reasons),
                    "evidence": list(result.evidence),
                    "model": result.model_level and f"{result.model_level} {result.model_probability:.2f}",
                }
            )
    return Evaluation(total=len(results), confusion=confusion, misses=misses, results=results)


def evaluate(
    cases: Iterable[Mapping[str, Any]],
    *,
    extra_phrases: Mapping[str, Iterable[str]] | None = None,
    assess_fn: Callable[[str], Assessment] | None = None,
) -> Evaluation:
    """Assess each case's `text` and compare with its `label`."""
    results = []
    for case in cases:
        label = case["label"]
        if label not in SEVERITY:
            raise ValueError(f"Unknown label {label!r} in case {case.get('id', '?')}.")
        result = assess_fn(case["text"]) if assess_fn else assess(case["text"], extra_phrases=extra_phrases)
        results.append((case, result))
    return _tally(results)
