"""The counts table of the corpus's data card (calls/triage/data/README.md), made from the corpus itself.

`manage.py triage_train` rewrites the table between the markers; a test fails when the card and the corpus differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

CARD_PATH = Path(__file__).resolve().parent / "data" / "README.md"
BEGIN, END = "<!-- counts:begin -->", "<!-- counts:end -->"
LABEL_ORDER = ("emergency", "urgent", "human", "routine")


def counts_table(rows: Sequence[dict[str, Any]]) -> str:
    by_kind = Counter((row["label"], row["kind"], row["lang"]) for row in rows)
    by_label = Counter((row["label"], row["lang"]) for row in rows)
    lines = [
        f"{len(rows)} utterances: {sum(r['lang'] == 'en' for r in rows)} English, "
        f"{sum(r['lang'] == 'es' for r in rows)} Spanish.",
        "",
        "| label | kind | en | es | total |",
        "|---|---|---:|---:|---:|",
    ]
    for label in LABEL_ORDER:
        kinds = sorted({kind for (lab, kind, _lang) in by_kind if lab == label})
        for kind in kinds:
            en, es = by_kind[(label, kind, "en")], by_kind[(label, kind, "es")]
            lines.append(f"| {label} | {kind} | {en} | {es} | {en + es} |")
        en, es = by_label[(label, "en")], by_label[(label, "es")]
        lines.append(f"| **{label}** | **all** | **{en}** | **{es}** | **{en + es}** |")
    routine = [row for row in rows if row["label"] == "routine"]
    hard = sum(row["kind"].startswith("hn_") for row in routine)
    lines += ["", f"Hard negatives: {hard} of {len(routine)} routine lines ({hard / max(1, len(routine)):.0%})."]
    return "\n".join(lines)


def card_with_counts(card: str, rows: Sequence[dict[str, Any]]) -> str:
    head, _, rest = card.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{counts_table(rows)}\n{END}{tail}"


def update_card(rows: Sequence[dict[str, Any]], path: Path = CARD_PATH) -> None:
    path.write_text(card_with_counts(path.read_text(encoding="utf-8"), rows), encoding="utf-8")
