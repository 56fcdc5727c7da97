"""The rules layer of triage on its own (calls/triage/rules.py): normalisation, lexicons, guards, clinic phrases."""

from __future__ import annotations

import dataclasses

import pytest

from calls.triage.rules import Assessment, assess, assess_agent, explain, extra_phrases_for, normalize
from organizations.models import EscalationPhrase


def test_normalize_strips_accents_apostrophes_and_fillers():
    assert normalize("  Um, my DAD\u2019s chest\u2026 uh hurts!  ") == "my dads chest . hurts ."
    assert normalize("¿Qué pasó? Está sangrando") == "que paso . esta sangrando"


def test_assessment_is_frozen_and_names_reasons_and_evidence():
    result = assess("My husband is clutching his chest and can't breathe")
    assert result.level == "emergency"
    assert {"chest_pain", "breathing"} <= set(result.reasons)
    assert "cant breathe" in result.evidence
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.level = "routine"  # type: ignore[misc]


def test_highest_level_wins_and_lower_reasons_are_kept():
    result = assess("Put me through to a human, my wife is having a seizure")
    assert result.level == "emergency"
    assert result.reasons[0] == "seizure"
    assert "human_request" in result.reasons


def test_empty_or_punctuation_only_text_is_routine():
    assert assess("") == Assessment("routine")
    assert assess(" ... ?! ").level == "routine"


def test_negation_reaches_only_its_own_clause():
    assert assess("no chest pain").level == "routine"
    assert assess("no chest pain but my arm went numb and my face is drooping").level == "emergency"
    assert assess("no fever and now he can't breathe").level == "emergency"


def test_cant_stop_is_not_a_negation():
    assert assess("the bleeding won't stop").level == "emergency"
    assert assess("no para de sangrar").level == "emergency"


def test_past_events_need_a_present_cue_to_escalate():
    assert assess("my son had a seizure last year").level == "routine"
    assert assess("my son had a seizure last year and he's seizing again right now").level == "emergency"
    assert assess("hace dos años tuve convulsiones").level == "routine"
    assert assess("hace dos años tuvo convulsiones y ahora está convulsionando otra vez").level == "emergency"


def test_questions_and_hypotheticals_do_not_escalate_but_uncertainty_does():
    assert assess("what should I do if my baby stops breathing").level == "routine"
    assert assess("qué pasa si mi bebé deja de respirar").level == "routine"
    assert assess("I can't tell if my baby is breathing").level == "emergency"


def test_jokes_and_idioms_do_not_escalate_but_the_literal_meaning_does():
    assert assess("this wait is killing me haha").level == "routine"
    assert assess("my chest is killing me").level == "emergency"
    assert assess("me muero de la risa").level == "routine"
    assert assess("me estoy muriendo, no puedo respirar").level == "emergency"


def test_languages_limit_the_lexicons_but_never_switch_triage_off():
    assert assess("no puede respirar", languages=["en"]).level == "routine"
    assert assess("no puede respirar", languages=["es"]).level == "emergency"
    assert assess("no puede respirar", languages=["fr"]).level == "emergency"  # no French lexicon: use them all


def test_extra_phrases_escalate_at_their_level_and_obey_guards():
    extra = {"urgent": ["wound vac alarm"], "human": ["Dr. Núñez"]}
    result = assess("my wound vac alarm keeps beeping", extra_phrases=extra)
    assert (result.level, result.reasons, result.evidence) == ("urgent", ("clinic_phrase",), ("wound vac alarm",))
    assert assess("can I speak with dr nunez", extra_phrases=extra).level == "human"
    assert assess("the wound vac alarm is not the issue, no wound vac alarm", extra_phrases=extra).level == "urgent"
    assert assess("there's no wound vac alarm", extra_phrases=extra).level == "routine"
    with pytest.raises(ValueError):
        assess("anything", extra_phrases={"panic": ["x"]})


def test_explain_shows_the_guard_that_hid_a_match():
    matches = explain("no chest pain, just a cough")
    assert matches and matches[0]["reason"] == "chest_pain" and matches[0]["suppressed_by"] == "negation"


@pytest.mark.parametrize(
    "text",
    [
        "I'm not sure about that.",
        "I can't help with that request.",
        "No estoy segura, déjeme verificar.",
        "I don't have that information.",
    ],
)
def test_agent_hedging_is_uncertain(text):
    result = assess_agent(text)
    assert result is not None and result.level == "uncertain"


@pytest.mark.parametrize(
    "text", ["Your appointment is at 3 pm on Tuesday.", "I'm not sure I caught your name, could you repeat it?"]
)
def test_agent_confident_answers_are_not_uncertain(text):
    assert assess_agent(text) is None


def test_extra_phrases_for_reads_only_that_clinics_rows(org_a, org_b):
    EscalationPhrase.objects.create(organization=org_a, level="emergency", phrase="pump alarm")
    EscalationPhrase.objects.create(organization=org_a, level="human", phrase="billing lady")
    EscalationPhrase.objects.create(organization=org_b, level="urgent", phrase="clinic b only")
    assert extra_phrases_for(org_a) == {"emergency": ["pump alarm"], "human": ["billing lady"]}
    assert assess("my insulin pump alarm is going off", extra_phrases=extra_phrases_for(org_a)).level == "emergency"
    assert assess("clinic b only", extra_phrases=extra_phrases_for(org_a)).level == "routine"
