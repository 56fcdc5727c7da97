"""Triage of caller utterances: the safety net that does not depend on the voice model.

`assess(text)` reads one transcribed caller utterance and returns the level it calls for (emergency > urgent >
human > routine) and why. Two layers decide together:

- **the rules** (calls/triage/rules.py with the lexicon beside it): readable patterns in English and Spanish with
  guards scoped to the clause (negation, past or resolved events, hypotheticals and questions, idioms, jokes,
  unrelated mentions). Instant, explainable, and they carry each clinic's extra phrases;
- **the learned layer** (calls/triage/model.py): a logistic regression over character and word n-grams, trained by
  `manage.py triage_train` from the labelled corpus in calls/triage/data/, which generalises to phrasings no rule
  names ("I can't lift my coffee cup with my right hand", "ya les dejé todo arreglado a mis hijos").

The policy (`decide`), with thresholds chosen on a held-back split of the corpus for recall first:
1. a rule match that survived its guards stands (the rules' level is a floor), unless the model is confident the
   utterance is routine (p(routine) >= `demote`): hard negatives the guards do not know ("I'm bleeding out of my
   wallet with these prescriptions"); a clinic's own phrases always stand;
2. a **strong** model emergency score (>= `emergency_strong`) is an emergency whatever the guards say: a guard alone
   never silences it;
3. a weaker model score escalates (emergency >= `emergency` and ahead of urgent by `urgent_margin`, urgent when
   emergency + urgent >= `urgent`, human >= `human`) unless a guard of the rules vetoes it (a negated, past,
   hypothetical or idiomatic mention in the text);
4. self-harm is its own path: the rules' `self_harm` reasons or the model's self-harm head (>= `self_harm`) make it
   an emergency, and the head tells a caller's own intent (`self_harm`: 988 first) from someone else's reported
   intent (`self_harm_other`: 911 for the person at risk, the caller kept on the line).
Every Assessment explains itself: the rule ids and evidence, the guards that vetoed, and the model's level and
probability (`explanation()`, stored on the escalation and shown in the console).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from calls.triage import rules
from calls.triage.model import Prediction, TriageModel, default_model
from calls.triage.rules import CLINIC_PHRASE, LANGUAGES, assess_agent, explain, extra_phrases_for, normalize
from organizations.vocabulary import TriageLevel

__all__ = [
    "LANGUAGES",
    "Assessment",
    "assess",
    "assess_agent",
    "decide",
    "explain",
    "extra_phrases_for",
    "normalize",
]

EMERGENCY, URGENT, HUMAN, ROUTINE = TriageLevel.EMERGENCY, TriageLevel.URGENT, TriageLevel.HUMAN, TriageLevel.ROUTINE
LEVELS = (ROUTINE, HUMAN, URGENT, EMERGENCY)  # ascending severity
SEVERITY: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}
SELF_HARM = "self_harm"  # the caller's own intent: 988 first
SELF_HARM_OTHER = "self_harm_other"  # someone else's intent, reported by the caller: 911 for the person at risk
MODEL_REASON = "model"  # the learned layer escalated where no rule matched

# Used when the artifact carries none (training writes the ones it chose into model.json).
DEFAULT_THRESHOLDS = {
    "emergency": 0.45,
    "emergency_strong": 0.85,
    "urgent": 0.5,
    "human": 0.5,
    "self_harm": 0.5,
    "demote": 1.01,  # > 1: the model never overrides a rule
    "urgent_margin": -1.0,  # a weak emergency score must exceed the urgent one by this much (-1: off)
}


@dataclass(frozen=True, slots=True)
class Assessment:
    """What triage concluded about one utterance, and why."""

    level: str
    reasons: tuple[str, ...] = ()  # rule ids (e.g. chest_pain, self_harm), "model", "self_harm_other"
    evidence: tuple[str, ...] = ()  # the normalised words the rules matched
    vetoes: tuple[str, ...] = ()  # guards that suppressed a match or a weak model score
    demoted: str = ""  # the rules' level the model overrode as routine ("" when it did not)
    model_level: str = ""  # the learned layer's most probable level ("" without a model)
    model_probability: float = 0.0  # its probability of `level` (of emergency for an emergency)
    decided_by: str = "rules"  # "rules", "model", "rules+model" or "" (routine)
    probabilities: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def escalates(self) -> bool:
        return self.level != ROUTINE

    @property
    def self_harm_other(self) -> bool:
        return SELF_HARM_OTHER in self.reasons

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "reasons": list(self.reasons), "evidence": list(self.evidence)}

    def explanation(self) -> dict[str, Any]:
        """What an escalation stores about the decision (shown in the console): ids, words, probabilities."""
        return {
            "level": str(self.level),
            "decided_by": self.decided_by,
            "rules": [reason for reason in self.reasons if reason not in {MODEL_REASON, SELF_HARM_OTHER}],
            "evidence": list(self.evidence),
            "vetoes": list(self.vetoes),
            "demoted": str(self.demoted),
            "model": {
                "level": str(self.model_level),
                "probability": round(self.model_probability, 3),
                "probabilities": {str(k): round(v, 3) for k, v in self.probabilities.items()},
            }
            if self.model_level
            else None,
            "self_harm": "other" if self.self_harm_other else ("self" if SELF_HARM in self.reasons else ""),
        }


def _with_self_harm_person(reasons: list[str], prediction: Prediction | None) -> list[str]:
    """Mark a self-harm decision as someone else's intent when the model's head says so."""
    if prediction is None or SELF_HARM not in reasons:
        return reasons
    if prediction.self_harm.get("third", 0.0) > prediction.self_harm.get("first", 0.0):
        return [reason for reason in reasons if reason != SELF_HARM] + [SELF_HARM_OTHER]
    return reasons


def decide(
    found: rules.Assessment, prediction: Prediction | None, thresholds: Mapping[str, float] | None = None
) -> Assessment:
    """The policy (see the module docstring): combine the rules' findings and the model's probabilities."""
    if prediction is None:
        return Assessment(found.level, found.reasons, found.evidence, found.vetoes)
    t = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    p = prediction.level
    p_emergency, p_urgent, p_human = p.get(EMERGENCY, 0.0), p.get(URGENT, 0.0), p.get(HUMAN, 0.0)
    p_self_harm = prediction.self_harm.get("first", 0.0) + prediction.self_harm.get("third", 0.0)
    vetoed = bool(found.vetoes)
    rules_level, rules_reasons, demoted = found.level, list(found.reasons), ""
    if (
        rules_level != ROUTINE
        and CLINIC_PHRASE not in rules_reasons
        and (rules_level != EMERGENCY or found.vetoes)  # an emergency rule is overridden only beside a guard
        and p.get(ROUTINE, 0.0) >= t["demote"]
    ):
        rules_level, rules_reasons, demoted = ROUTINE, [], str(found.level)

    weak_emergency = p_emergency >= t["emergency"] and p_emergency >= p_urgent + t["urgent_margin"] and not vetoed
    model_level = ROUTINE
    if (
        p_emergency >= t["emergency_strong"]
        or weak_emergency
        or (p_self_harm >= t["self_harm"] and (not vetoed or p_self_harm >= t["emergency_strong"]))
    ):
        model_level = EMERGENCY
    elif p_emergency + p_urgent >= t["urgent"] and not vetoed:
        model_level = URGENT
    elif p_human >= t["human"] and not vetoed:
        model_level = HUMAN

    reasons = rules_reasons
    level = rules_level
    if SEVERITY[model_level] > SEVERITY[level]:
        level = model_level
        decided_by = "model"
        if model_level == EMERGENCY and p_self_harm >= t["self_harm"] and SELF_HARM not in reasons:
            reasons.append(SELF_HARM)
        reasons.append(MODEL_REASON)
    elif level == ROUTINE:
        decided_by = ""
    else:
        decided_by = "rules+model" if model_level == level else "rules"
    if level == EMERGENCY:
        reasons = _with_self_harm_person(reasons, prediction)
    probability = p_emergency if level == EMERGENCY else p.get(level, 0.0)
    return Assessment(
        level=level,
        reasons=tuple(dict.fromkeys(reasons)),
        evidence=found.evidence,
        vetoes=found.vetoes,
        demoted=demoted,
        model_level=prediction.top_level,
        model_probability=probability,
        decided_by=decided_by,
        probabilities=dict(p),
    )


def assess(
    text: str,
    *,
    languages: Iterable[str] | None = None,
    extra_phrases: Mapping[str, Iterable[str]] | None = None,
    model: TriageModel | bool | None = True,
) -> Assessment:
    """Triage one caller utterance.

    `languages` limits the rules' lexicons (codes such as "en", "es"; None or only unknown codes means all; the
    model reads every language). `extra_phrases` maps a level ("emergency", "urgent", "human") to clinic phrases
    that escalate at that level, under the same guards. `model`: True for the shipped model, False for the rules
    alone, or a TriageModel."""
    found = rules.assess(text, languages=languages, extra_phrases=extra_phrases)
    chosen = default_model() if model is True else (model or None)
    if chosen is None or not normalize(text):
        return decide(found, None)
    result = decide(found, chosen.predict(text), chosen.thresholds)
    if result.decided_by == "model" and not result.evidence:
        # The words the model leaned on most, so staff see why (the rules had nothing to show).
        terms = tuple(term for term, _ in chosen.top_terms(text, str(result.level), k=4))
        result = dataclasses.replace(result, evidence=terms)
    return result
