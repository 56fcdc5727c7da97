"""Evaluate the triage layer on labelled JSON lines (text, label, lang, ...), e.g. an outside validation set.

    python manage.py triage_eval cases.jsonl [more.jsonl ...] [--lang es] [--no-misses]

Prints per-label precision and recall, the routine false-escalation rate (routine cases assessed emergency or
urgent), a confusion matrix, the same per language, and every miss with what triage said and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.triage import LEVELS, Evaluation, evaluate

ORDER = tuple(reversed(LEVELS))  # emergency first


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{value * 100:5.1f}%"


def load_cases(paths: list[str]) -> list[dict[str, Any]]:
    cases = []
    for name in paths:
        path = Path(name)
        if not path.is_file():
            raise CommandError(f"{name}: no such file.")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                case = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CommandError(f"{name}:{number}: invalid JSON ({exc.msg}).") from exc
            if not isinstance(case, dict) or not isinstance(case.get("text"), str) or case.get("label") not in LEVELS:
                raise CommandError(f"{name}:{number}: expected an object with a string text and a label in {LEVELS}.")
            case.setdefault("id", f"{path.name}:{number}")
            case.setdefault("lang", "?")
            cases.append(case)
    return cases


class Command(BaseCommand):
    help = "Evaluate triage on labelled JSON lines: precision/recall, false escalations, confusion matrix, misses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE.jsonl")
        parser.add_argument("--lang", help="only cases in this language (e.g. en, es)")
        parser.add_argument("--no-misses", action="store_true", help="do not list the misses")

    def handle(self, *args: Any, **options: Any) -> None:
        cases = load_cases(options["files"])
        if options["lang"]:
            cases = [c for c in cases if c.get("lang") == options["lang"]]
        if not cases:
            raise CommandError("No cases to evaluate.")
        overall = evaluate(cases)
        self._report(f"All cases ({len(cases)})", overall)
        for lang in sorted({c["lang"] for c in cases}):
            subset = [c for c in cases if c["lang"] == lang]
            if len(subset) != len(cases):
                self._report(f"Language {lang} ({len(subset)})", evaluate(subset), matrix=False)
        if not options["no_misses"]:
            self.stdout.write(f"\nMisses ({len(overall.misses)}):")
            for miss in overall.misses:
                reasons = ",".join(miss["reasons"]) or "-"
                self.stdout.write(
                    f"  {miss['id']} [{miss['lang']}] {miss['label']} -> {miss['predicted']} ({reasons}): "
                    f"{miss['text']}"
                )

    def _report(self, title: str, ev: Evaluation, *, matrix: bool = True) -> None:
        self.stdout.write(f"\n== {title}")
        self.stdout.write(f"{'label':<10} {'support':>7} {'precision':>9} {'recall':>7}")
        for label in ORDER:
            self.stdout.write(
                f"{label:<10} {ev.support(label):>7} {_pct(ev.precision(label)):>9} {_pct(ev.recall(label)):>7}"
            )
        self.stdout.write(f"routine false-escalation (emergency/urgent): {_pct(ev.routine_false_escalation).strip()}")
        if matrix:
            self.stdout.write("\nconfusion (rows: label, columns: predicted)")
            self.stdout.write(f"{'':<10}" + "".join(f"{p:>10}" for p in ORDER))
            for label in ORDER:
                self.stdout.write(f"{label:<10}" + "".join(f"{ev.confusion[label][p]:>10}" for p in ORDER))
