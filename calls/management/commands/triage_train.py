"""`manage.py triage_train`: train triage's learned layer from calls/triage/data/corpus/ and write model.json.

    python manage.py triage_train            # writes calls/triage/data/model.json
    python manage.py triage_train --output /tmp/model.json --json

Deterministic: the same corpus gives the same artifact (see calls/triage/train.py). Commit the corpus and the
artifact together; a test fails when the artifact was trained from another corpus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from calls.triage.model import ARTIFACT_PATH


class Command(BaseCommand):
    help = "Train the learned triage layer from the labelled corpus and write its JSON artifact."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, default=ARTIFACT_PATH, help=f"default: {ARTIFACT_PATH}")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        from calls.triage.datacard import update_card
        from calls.triage.model import ARTIFACT_PATH
        from calls.triage.train import CorpusError, load_corpus, train  # scikit-learn loads only for training

        try:
            report = train(output=options["output"])
        except CorpusError as exc:
            raise CommandError(f"corpus: {exc}") from exc
        if options["output"] == ARTIFACT_PATH:
            update_card(load_corpus())  # the data card's counts follow the corpus the shipped model learnt
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        m = report["held_back_measures"]
        self.stdout.write(
            f"trained on {report['rows']} utterances in {report['seconds']} s "
            f"({report['features']['char']} char + {report['features']['word']} word n-grams)"
        )
        self.stdout.write(f"thresholds: {report['thresholds']}")
        self.stdout.write(
            f"held-back split ({report['held_back']}): emergency {m['emergency']:.3f}, self-harm {m['self_harm']:.3f}, "
            f"urgent {m['urgent']:.3f}, human {m['human']:.3f}, routine false escalation "
            f"{m['routine_false_escalation']:.3f}, routine to human {m['routine_to_human']:.3f}"
        )
        self.stdout.write(f"wrote {options['output']}")
