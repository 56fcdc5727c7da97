"""Assess caller utterances with the triage layer, from arguments or as JSON lines on standard input.

    python manage.py triage_check "my dad can't breathe" "can I book a cleaning"
    python manage.py triage_check --org clinic-a --jsonl < utterances.jsonl

--jsonl reads one JSON object per line with "text" (and an optional "id", echoed back) and writes one JSON line
{"id", "level", "reasons", "evidence"} per input line, in order. A line that is not such an object gets
{"id", "line", "error"} instead, so one bad line never stops a batch. Blank lines are skipped.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.triage import Assessment, assess, explain, extra_phrases_for
from calls.triage.model import default_model
from organizations.models import Organization
from organizations.vocabulary import TriageLevel


class Command(BaseCommand):
    help = "Assess caller utterances with the triage layer (arguments, or JSON lines on stdin with --jsonl)."
    stealth_options = ("stdin",)  # call_command(..., stdin=StringIO(...)) in tests

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("texts", nargs="*", metavar="TEXT", help="utterances to assess")
        parser.add_argument("--org", metavar="SLUG", help="apply this clinic's escalation phrases and languages")
        parser.add_argument("--jsonl", action="store_true", help="read JSON lines from stdin, write JSON lines")
        parser.add_argument(
            "--explain", action="store_true", help="also list rule matches and the guards that hid them"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        extra: dict[str, list[str]] = {}
        languages = None
        if options["org"]:
            org = Organization.objects.filter(slug=options["org"]).first()
            if org is None:
                raise CommandError(f"No clinic with slug {options['org']!r}.")
            extra = extra_phrases_for(org)
            languages = org.agent_languages
        if options["jsonl"]:
            if options["texts"]:
                raise CommandError("Give texts as arguments or --jsonl on stdin, not both.")
            self._jsonl(options.get("stdin") or sys.stdin, extra, languages)
            return
        if not options["texts"]:
            raise CommandError("Nothing to assess: pass TEXT arguments, or --jsonl with JSON lines on stdin.")
        for text in options["texts"]:
            result = assess(text, languages=languages, extra_phrases=extra)
            styles: dict[str, Callable[[str], str]] = {
                TriageLevel.EMERGENCY: self.style.ERROR,
                TriageLevel.URGENT: self.style.WARNING,
                TriageLevel.HUMAN: self.style.NOTICE,
            }
            style = styles.get(result.level, self.style.SUCCESS)
            self.stdout.write(f"{style(result.level.upper()):<9}  {text}")
            if result.reasons:
                self.stdout.write(f"  reasons:  {', '.join(result.reasons)}")
                self.stdout.write(f"  evidence: {', '.join(repr(e) for e in result.evidence)}")
            if options["explain"]:
                self._explain(text, result, languages)

    def _explain(self, text: str, result: Assessment, languages: list[str] | None) -> None:
        """What each layer contributed: every rule match (and the guard that hid it), then the model."""
        self.stdout.write(f"  decided by: {result.decided_by or 'nothing escalated'}")
        self.stdout.write("  rules:")
        matches = explain(text, languages=languages)
        for match in matches:
            hidden = f"  (suppressed: {match['suppressed_by']})" if match["suppressed_by"] else ""
            self.stdout.write(f"    - {match['level']}/{match['reason']}: {match['evidence']!r}{hidden}")
        if not matches:
            self.stdout.write("    (no rule matched)")
        if result.vetoes:
            self.stdout.write(f"  guards that veto a weak model score: {', '.join(result.vetoes)}")
        if result.demoted:
            self.stdout.write(f"  the model overrode the rules' {result.demoted} as routine")
        model = default_model()
        if model is None:
            self.stdout.write("  model: none (no artifact)")
            return
        probabilities = ", ".join(f"{level} {p:.2f}" for level, p in sorted(result.probabilities.items()))
        self.stdout.write(f"  model: {result.model_level} ({probabilities})")
        prediction = model.predict(text)
        shown = {k: round(v, 2) for k, v in prediction.self_harm.items()}
        self.stdout.write(f"  model self-harm head: {shown}")
        terms = model.top_terms(text, str(result.level if result.escalates else result.model_level))
        if terms:
            self.stdout.write("  words that pushed hardest: " + ", ".join(f"{t!r} {w:+.2f}" for t, w in terms))

    def _jsonl(self, stream: Any, extra: dict[str, list[str]], languages: list[str] | None) -> None:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            out: dict[str, Any]
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                out = {"id": None, "line": number, "error": f"invalid JSON: {exc.msg}"}
            else:
                if not isinstance(item, dict):
                    out = {"id": None, "line": number, "error": 'expected a JSON object with a "text" field'}
                elif not isinstance(item.get("text"), str):
                    out = {"id": item.get("id"), "line": number, "error": '"text" must be a string'}
                else:
                    result = assess(item["text"], languages=languages, extra_phrases=extra)
                    out = {"id": item.get("id"), **result.as_dict()}
            self.stdout.write(json.dumps(out, ensure_ascii=False))
