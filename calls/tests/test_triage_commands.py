"""triage_eval and triage_check as an operator runs them."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from organizations.models import EscalationPhrase


def _run(*args, stdin: str | None = None) -> str:
    out = io.StringIO()
    kwargs: dict[str, Any] = {"stdout": out}
    if stdin is not None:
        kwargs["stdin"] = io.StringIO(stdin)
    call_command(*args, **kwargs)
    return out.getvalue()


def test_triage_eval_prints_metrics_confusion_matrix_languages_and_misses(tmp_path):
    cases = [
        {"id": "a", "text": "my dad can't breathe", "label": "emergency", "lang": "en"},
        {"id": "b", "text": "can I book a cleaning", "label": "routine", "lang": "en"},
        {"id": "c", "text": "quiero hablar con una persona", "label": "human", "lang": "es"},
        {"id": "d", "text": "can I book a cleaning please", "label": "urgent", "lang": "en"},  # a deliberate miss
    ]
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    out = _run("triage_eval", str(path))
    assert "== All cases (4)" in out
    assert "emergency" in out and "precision" in out and "recall" in out
    assert "routine false-escalation (emergency/urgent): 0.0%" in out
    assert "confusion (rows: label, columns: predicted)" in out
    assert "== Language es (1)" in out and "== Language en (3)" in out
    assert "Misses (1):" in out and "d [en] urgent -> routine" in out


def test_triage_eval_rejects_a_missing_file_or_a_bad_line(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        _run("triage_eval", str(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi", "label": "routine"}\n{oops\n')
    with pytest.raises(CommandError, match=r"bad\.jsonl:2"):
        _run("triage_eval", str(bad))


def test_triage_check_assesses_texts_given_as_arguments():
    out = _run("triage_check", "my baby is not breathing", "can I book a cleaning")
    assert "EMERGENCY" in out and "breathing" in out and "ROUTINE" in out


def test_triage_check_jsonl_answers_one_line_per_input_line_in_order_and_survives_bad_lines():
    stdin = "\n".join(
        [
            json.dumps({"id": "x1", "text": "he took the whole bottle"}),
            "not json",
            json.dumps([1, 2]),
            json.dumps({"id": 7, "text": 3}),
            json.dumps({"text": "operator please"}),
        ]
    )
    lines = [json.loads(line) for line in _run("triage_check", "--jsonl", stdin=stdin).splitlines()]
    assert len(lines) == 5
    assert lines[0] == {"id": "x1", "level": "emergency", "reasons": ["overdose"], "evidence": lines[0]["evidence"]}
    assert "error" in lines[1] and lines[1]["line"] == 2
    assert "error" in lines[2]
    assert lines[3]["id"] == 7 and "error" in lines[3]
    assert lines[4]["id"] is None and lines[4]["level"] == "human"


def test_triage_check_org_applies_that_clinics_phrases(org_a, org_b):
    EscalationPhrase.objects.create(organization=org_a, level="urgent", phrase="cpap mask is leaking")
    text = "the CPAP mask is leaking"
    assert "ROUTINE" in _run("triage_check", text)
    assert "URGENT" in _run("triage_check", "--org", org_a.slug, text)
    assert "ROUTINE" in _run("triage_check", "--org", org_b.slug, text)
    line = json.loads(_run("triage_check", "--org", org_a.slug, "--jsonl", stdin=json.dumps({"text": text})))
    assert line["level"] == "urgent" and line["reasons"] == ["clinic_phrase"]


def test_triage_check_refuses_an_unknown_clinic_or_no_input(db):
    with pytest.raises(CommandError, match="No clinic"):
        _run("triage_check", "--org", "nope", "hello")
    with pytest.raises(CommandError, match="Nothing to assess"):
        _run("triage_check")
