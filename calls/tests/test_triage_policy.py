"""The learned layer and the policy that combines it with the rules: the artifact, training, and decisions on
phrasings the corpus does not contain."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from scipy.sparse import hstack

from calls.conversation import (
    EMERGENCY_STEERING,
    SELF_HARM_OTHER_STEERING,
    SELF_HARM_STEERING,
    caller_utterance_handle,
)
from calls.models import Escalation
from calls.triage import SELF_HARM, SELF_HARM_OTHER, assess, decide, rules
from calls.triage import train as training
from calls.triage.model import Prediction, corpus_digest, default_model, model_text
from conftest import make_call

CORPUS = training.load_corpus()
CORPUS_TEXTS = {row["text"].strip().lower() for row in CORPUS}


def not_in_corpus(texts):
    for text in texts:
        assert text.strip().lower() not in CORPUS_TEXTS, f"test phrasing is a training line: {text}"
    return texts


# --- The artifact and training ----------------------------------------------------------------------------------


def test_the_shipped_model_was_trained_from_the_corpus_in_the_repository():
    model = default_model()
    assert model is not None, "calls/triage/data/model.json is missing: run manage.py triage_train"
    assert model.corpus_sha256 == corpus_digest(), (
        "the corpus changed since the model was trained: run `python manage.py triage_train` and commit model.json"
    )


def test_the_corpus_is_large_varied_and_mostly_hard():
    assert len(CORPUS) >= 4000
    assert sum(row["lang"] == "es" for row in CORPUS) >= 1300
    routine = [row for row in CORPUS if row["label"] == "routine"]
    assert sum(row["kind"].startswith("hn_") for row in routine) >= 0.4 * len(routine)
    kinds = {row["kind"] for row in CORPUS if row["label"] == "emergency"}
    for kind in ("stroke", "self_harm_first", "self_harm_third", "newborn_infant", "obstetric", "diabetic"):
        assert kind in kinds


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """A stratified sample of the corpus in two files, so training runs in seconds."""
    rng = random.Random(7)
    sample = rng.sample(CORPUS, 900)
    folder = tmp_path_factory.mktemp("corpus")
    paths = [folder / "a.jsonl", folder / "b.jsonl"]
    for i, path in enumerate(paths):
        path.write_text("".join(json.dumps(row) + "\n" for row in sample[i::2]), encoding="utf-8")
    return paths


def test_training_is_deterministic_and_records_the_corpus(small_corpus, tmp_path):
    first, second = tmp_path / "one.json", tmp_path / "two.json"
    report = training.train(output=first, paths=small_corpus)
    training.train(output=second, paths=small_corpus)
    assert first.read_bytes() == second.read_bytes()
    artifact = json.loads(first.read_text())
    assert artifact["corpus_sha256"] == corpus_digest(small_corpus) != corpus_digest()
    assert set(artifact["thresholds"]) == set(training.GRID)
    assert report["rows"] == 900


def test_the_run_time_model_gives_scikit_learns_probabilities():
    rows = CORPUS[::7]
    train_rows, held = rows[: len(rows) - 150], rows[-150:]
    fitted = training.fit(train_rows)
    model = training._model_from(fitted, {})
    texts = [model_text(row["text"]) for row in held]
    expected = fitted.level.predict_proba(hstack([fitted.char.transform(texts), fitted.word.transform(texts)]))
    got = np.array([[model.predict(row["text"]).level[c] for c in fitted.level.classes_] for row in held])
    assert np.abs(expected - got).max() < 1e-4


def test_a_broken_corpus_line_is_refused_with_its_place(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "text": "hi", "label": "panic", "lang": "en", "kind": "k", "tags": []}\n')
    with pytest.raises(training.CorpusError, match=r"bad\.jsonl:1"):
        training.load_corpus([bad])


def test_the_vectorised_policy_used_for_thresholds_is_the_policy():
    rng = np.random.default_rng(3)
    n = 400
    a = training._Arrays(
        label=rng.integers(0, 4, n),
        rules_sev=rng.choice([0, 0, 0, 1, 2, 3], n),
        clinic_phrase=rng.random(n) < 0.05,
        vetoed=rng.random(n) < 0.3,
        p_routine=rng.random(n),
        p_emergency=rng.random(n),
        p_urgent=rng.random(n) * 0.5,
        p_human=rng.random(n) * 0.5,
        p_self_harm=rng.random(n),
        self_harm=np.zeros(n, dtype=bool),
    )
    t = {
        "emergency": 0.5,
        "emergency_strong": 0.9,
        "self_harm": 0.7,
        "urgent": 0.5,
        "human": 0.4,
        "demote": 0.8,
        "urgent_margin": 0.1,
    }
    vectorised = training._levels(a, t)
    levels = ("routine", "human", "urgent", "emergency")
    for i in range(n):
        found = rules.Assessment(
            levels[a.rules_sev[i]],
            ("clinic_phrase",) if a.clinic_phrase[i] else ("x",) if a.rules_sev[i] else (),
            (),
            ("negation",) if a.vetoed[i] else (),
        )
        p_sh = float(a.p_self_harm[i])
        prediction = Prediction(
            level={
                "routine": float(a.p_routine[i]),
                "emergency": float(a.p_emergency[i]),
                "urgent": float(a.p_urgent[i]),
                "human": float(a.p_human[i]),
            },
            self_harm={"none": 1 - p_sh, "first": p_sh, "third": 0.0},
        )
        assert levels.index(decide(found, prediction, t).level) == vectorised[i], i


# --- The policy on its own --------------------------------------------------------------------------------------

T = {
    "emergency": 0.5,
    "emergency_strong": 0.9,
    "self_harm": 0.7,
    "urgent": 0.5,
    "human": 0.5,
    "demote": 0.85,
    "urgent_margin": -1.0,
}


def prediction(emergency=0.0, urgent=0.0, human=0.0, first=0.0, third=0.0):
    routine = max(0.0, 1 - emergency - urgent - human)
    return Prediction(
        level={"emergency": emergency, "urgent": urgent, "human": human, "routine": routine},
        self_harm={"none": 1 - first - third, "first": first, "third": third},
    )


NO_RULE = rules.Assessment("routine")
NEGATED = rules.Assessment("routine", vetoes=("negation",))


def test_a_strong_emergency_score_is_never_silenced_by_a_guard_alone():
    assert decide(NEGATED, prediction(emergency=0.95), T).level == "emergency"


def test_a_guard_vetoes_a_weak_model_score():
    assert decide(NEGATED, prediction(emergency=0.6), T).level == "routine"
    assert decide(NO_RULE, prediction(emergency=0.6), T).level == "emergency"
    assert decide(NEGATED, prediction(urgent=0.7), T).level == "routine"


def test_a_weak_emergency_score_still_counts_towards_urgent():
    result = decide(NO_RULE, prediction(emergency=0.3, urgent=0.3), T)
    assert result.level == "urgent" and result.decided_by == "model"


def test_the_rules_are_a_floor_unless_the_model_is_confident_it_is_routine():
    found = rules.Assessment("urgent", ("fever",), ("fever",))
    kept = decide(found, prediction(emergency=0.05, urgent=0.05), T)  # p(routine) 0.90 >= demote 0.85
    assert kept.level == "routine" and kept.demoted == "urgent"
    assert kept.explanation()["demoted"] == "urgent"
    held = decide(found, prediction(emergency=0.2, urgent=0.1), T)  # p(routine) 0.70
    assert held.level == "urgent" and held.decided_by == "rules"


def test_an_emergency_rule_is_overridden_only_beside_a_guard():
    bare = rules.Assessment("emergency", ("allergic_reaction",), ("epipen",))
    assert decide(bare, prediction(emergency=0.02), T).level == "emergency"
    idiom = rules.Assessment("emergency", ("bleeding",), ("bleeding",), ("idiom",))
    assert decide(idiom, prediction(emergency=0.02), T).level == "routine"


def test_a_clinics_own_phrase_always_stands():
    found = rules.Assessment("urgent", ("clinic_phrase",), ("wound vac alarm",))
    assert decide(found, prediction(), T).level == "urgent"


def test_self_harm_is_its_own_path_and_tells_the_callers_intent_from_someone_elses():
    mine = decide(NO_RULE, prediction(emergency=0.2, first=0.8), T)
    assert mine.level == "emergency" and SELF_HARM in mine.reasons
    theirs = decide(NO_RULE, prediction(emergency=0.6, third=0.8), T)
    assert theirs.level == "emergency" and theirs.self_harm_other and SELF_HARM_OTHER in theirs.reasons
    by_rule = decide(rules.Assessment("emergency", (SELF_HARM,), ("want to die",)), prediction(third=0.9), T)
    assert by_rule.self_harm_other


def test_every_decision_explains_itself():
    result = assess("my husband's face is drooping on one side and his words are slurred")
    explanation = result.explanation()
    assert explanation["level"] == "emergency"
    assert explanation["rules"] or explanation["model"]["probability"] >= 0.5
    assert explanation["model"]["level"] in {"emergency", "urgent", "human", "routine"}
    assert result.evidence  # the words that decided, for staff


# --- Real phrasings the corpus does not contain -----------------------------------------------------------------

MUST_BE_EMERGENCY = not_in_corpus(
    [
        "my grandma's words are coming out jumbled and her left hand just let go of her fork",
        "he swallowed one of those flat round batteries from the car key",
        "my husband is on warfarin, banged his head on the cupboard door and now keeps throwing up",
        "the baby is seven weeks old and the thermometer says 38.4",
        "she's shaking all over on the kitchen floor and won't answer me",
        "my chest feels like a belt is being pulled tight and it's going down my left arm",
        "I'm 33 weeks and there's a lot of bright red blood, soaking through",
        "mi esposo es diabético, está sudando frío, bien confundido y casi no despierta",
        "se tomó todo el frasco de las pastillas de su abuela, tiene cuatro años",
        "a mi papá se le chueca la boca y no le entiendo lo que dice",
        "mi bebé se metió algo a la boca y no puede llorar ni respirar",
        "the fumes from mixing bleach and the other cleaner, now we're all coughing and my wife fainted",
    ]
)

MUST_BE_SELF_HARM_FIRST = not_in_corpus(
    [
        "I've written the letters and put the pills by my bed, tonight is the night",
        "después del domingo ya no me van a tener que aguantar, ya lo decidí",
    ]
)

MUST_BE_SELF_HARM_OTHER = not_in_corpus(
    [
        "my brother just texted me that he's sorry for everything and he's sitting in the garage with the car running",
        "mi hija me dijo que ya se despidió de sus amigas y que tiene la navaja lista",
    ]
)

MUST_STAY_ROUTINE = not_in_corpus(
    [
        "no chest pain, nothing like that, I'm only calling about my flu shot",
        "I had pneumonia last winter, it's all cleared up, I just need a form for my new job",
        "this heat is killing me, do you validate parking at the garage",
        "what should I do if my son gets a nosebleed at school, is there a form for that",
        "can I get a refill on my nitroglycerin spray before my trip",
        "¿Qué hago si a mi niño le da fiebre en la noche? Es solo para saber",
        "me muero de ganas de conocer a la doctora nueva, ¿tiene citas el martes?",
        "mi abuelo tuvo un infarto hace diez años, ya está bien, necesito su expediente",
    ]
)


@pytest.mark.parametrize("text", MUST_BE_EMERGENCY)
def test_emergencies_told_by_what_the_caller_sees_are_emergencies(text):
    assert assess(text).level == "emergency", assess(text).explanation()


@pytest.mark.parametrize("text", MUST_BE_SELF_HARM_FIRST)
def test_a_callers_own_intent_is_self_harm(text):
    result = assess(text)
    assert result.level == "emergency" and SELF_HARM in result.reasons, result.explanation()


@pytest.mark.parametrize("text", MUST_BE_SELF_HARM_OTHER)
def test_someone_elses_reported_intent_is_self_harm_of_another(text):
    result = assess(text)
    assert result.level == "emergency" and result.self_harm_other, result.explanation()


@pytest.mark.parametrize("text", MUST_STAY_ROUTINE)
def test_hard_negatives_stay_routine(text):
    result = assess(text)
    assert result.level == "routine", result.explanation()


def test_a_spanish_emergency_escalates_in_an_english_only_clinic():
    # The rules' lexicons follow the clinic's languages; the learned layer reads every language.
    assert rules.assess("no puede respirar", languages=["en"]).level == "routine"
    assert assess("no puede respirar", languages=["en"]).level == "emergency"


# --- The self-harm scripts on a call ----------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "script"),
    [
        (MUST_BE_SELF_HARM_FIRST[0], SELF_HARM_STEERING),
        (MUST_BE_SELF_HARM_OTHER[0], SELF_HARM_OTHER_STEERING),
        (MUST_BE_EMERGENCY[0], EMERGENCY_STEERING),
    ],
    ids=["own-intent-988", "someone-else-911", "medical-911"],
)
def test_the_agent_is_steered_with_the_script_for_who_is_at_risk(org_a, text, script):
    call = make_call(org_a)
    decision = caller_utterance_handle(call=call, text=text, item_id="i1")
    assert decision.steering == script
    escalation = Escalation.objects.get(call=call)
    assert escalation.level == "emergency" and escalation.triage["level"] == "emergency"
    if script is SELF_HARM_OTHER_STEERING:
        assert "do not end the call" in script and "911" in script
        assert escalation.triage["self_harm"] == "other"


def test_the_data_card_counts_the_corpus_as_it_is():
    from calls.triage.datacard import CARD_PATH, card_with_counts

    card = CARD_PATH.read_text(encoding="utf-8")
    assert card == card_with_counts(card, CORPUS), "run `python manage.py triage_train` to refresh the data card"


def test_a_weak_emergency_score_must_lead_the_urgent_one_by_the_margin():
    t = {**T, "urgent_margin": 0.1}
    assert decide(NO_RULE, prediction(emergency=0.5, urgent=0.45), t).level == "urgent"
    assert decide(NO_RULE, prediction(emergency=0.6, urgent=0.3), t).level == "emergency"
