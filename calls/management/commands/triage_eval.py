"""Evaluate triage on labelled JSON lines (text, label, lang, kind, ...), e.g. an outside validation set.

    python manage.py triage_eval cases.jsonl [more.jsonl ...] [--lang es] [--no-misses] [--rules-only]
    python manage.py triage_eval --held-back        # the corpus's held-back split (calls/triage/train.py)

The shipped model is trained on the whole corpus, so --held-back with it is in-sample; it first prints the
out-of-sample figures training measured on that split with a model fitted without it (model.json, "held_back").

Prints per-label precision and recall, the routine false-escalation rate (routine cases assessed emergency or
urgent), a confusion matrix, recall per language and per kind, and every miss with what triage said and why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.triage import LEVELS, assess
from calls.triage.evaluation import Evaluation, evaluate

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
            case.setdefault("kind", case.get("category") or "?")
            cases.append(case)
    return cases


class Command(BaseCommand):
    help = "Evaluate triage on labelled JSON lines: precision/recall per label, language and kind; misses."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="*", metavar="FILE.jsonl")
        parser.add_argument(
            "--held-back", action="store_true", help="the corpus's held-back split (out-of-sample figures first)"
        )
        parser.add_argument("--lang", help="only cases in this language (e.g. en, es)")
        parser.add_argument("--no-misses", action="store_true", help="do not list the misses")
        parser.add_argument("--rules-only", action="store_true", help="the rules alone, without the learned layer")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["held_back"]:
            from calls.triage.train import load_corpus, split

            cases: list[dict[str, Any]] = split(load_corpus())[1]
            from calls.triage.model import default_model

            model = default_model()
            held = (model.artifact_meta.get("trained") or {}).get("held_back") if model else None
            if held:
                self.stdout.write(f"Out of sample (training's held-back run, model fitted without these lines): {held}")
                self.stdout.write("Below: the shipped model on the same lines (in-sample, it learnt them).")
        elif options["files"]:
            cases = load_cases(options["files"])
        else:
            raise CommandError("Give FILE.jsonl arguments or --held-back.")
        if options["lang"]:
            cases = [c for c in cases if c.get("lang") == options["lang"]]
        if not cases:
            raise CommandError("No cases to evaluate.")
        rules_only = options["rules_only"]
        overall = evaluate(cases, assess_fn=(lambda text: assess(text, model=False)) if rules_only else None)
        self._report(f"All cases ({len(cases)}){' - rules only' if rules_only else ''}", overall)
        by_lang = overall.by("lang")
        if len(by_lang) > 1:
            for lang, ev in by_lang.items():
                self._report(f"Language {lang} ({ev.total})", ev, matrix=False)
        self._kinds(overall)
        if not options["no_misses"]:
            self.stdout.write(f"\nMisses ({len(overall.misses)}):")
            for miss in overall.misses:
                reasons = ",".join(miss["reasons"]) or "-"
                shown = f" model {miss['model']}" if miss.get("model") else ""
                self.stdout.write(
                    f"  {miss['id']} [{miss['lang']}] {miss['label']} -> {miss['predicted']} ({reasons}{shown}): "
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

    def _kinds(self, overall: Evaluation) -> None:
        kinds = overall.by("kind")
        if len(kinds) <= 1:
            return
        self.stdout.write("\n== Per kind (recall of the case's own label; routine kinds: share kept routine)")
        self.stdout.write(f"{'kind':<22} {'label':<10} {'n':>4} {'recall':>7}")
        for kind, ev in kinds.items():
            for label in ORDER:
                if ev.support(label):
                    self.stdout.write(f"{kind:<22} {label:<10} {ev.support(label):>4} {_pct(ev.recall(label)):>7}")
