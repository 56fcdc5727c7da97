"""The learned layer of triage: a linear model over character and word n-grams, read from a JSON artifact.

The model is trained by `manage.py triage_train` (calls/triage/train.py, scikit-learn) from the labelled corpus in
calls/triage/data/corpus/ and written to calls/triage/data/model.json as plain numbers: the n-gram vocabulary, its
IDF weights and the coefficients of two logistic-regression heads. Nothing is unpickled; this module needs numpy
only, and scores one utterance in about a tenth of a millisecond.

Features (the same functions build them at training time, so the two cannot drift apart):
- the utterance normalised as the rules normalise it (accent-free lowercase ASCII, fillers dropped), without the
  clause punctuation;
- character n-grams of 2-5 inside word boundaries (each word padded with spaces, as scikit-learn's `char_wb`): they
  carry misspellings, ASR errors ("chess pain"), inflections and Spanish/English stems;
- word unigrams and bigrams;
each block TF-IDF weighted (sublinear tf, smooth idf) and L2-normalised on its own, then concatenated.

Heads: `level` (emergency / urgent / human / routine) and `self_harm` (none / first / third person).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from calls.triage.rules import normalize

DATA_DIR = Path(__file__).resolve().parent / "data"
CORPUS_DIR = DATA_DIR / "corpus"
ARTIFACT_PATH = DATA_DIR / "model.json"
ARTIFACT_FORMAT = "voiceagent-triage-linear/1"

CHAR_NGRAMS = (2, 5)
WORD_CACHE_SIZE = 50_000
WORD_NGRAMS = (1, 2)
_WORD_RE = re.compile(r"[a-z0-9]+")


# --- Features (shared with training) ----------------------------------------------------------------------------


def model_text(text: str) -> str:
    """What the model reads: the rules' normalisation without the clause punctuation tokens."""
    return " ".join(token for token in normalize(text).split() if token not in {".", ","})


def word_char_ngrams(word: str) -> list[str]:
    """The character n-grams (2..5) of one word padded with spaces, as scikit-learn's `char_wb` makes them."""
    low, high = CHAR_NGRAMS
    padded = f" {word} "
    length = len(padded)
    return [padded[i : i + n] for n in range(low, min(high, length) + 1) for i in range(length - n + 1)]


def char_ngrams(text: str) -> list[str]:
    """scikit-learn's `char_wb` analyzer for n = 2..5 on an already normalised text (the training analyzer)."""
    return [gram for word in text.split() for gram in word_char_ngrams(word)]


def word_ngrams(text: str) -> list[str]:
    tokens = _WORD_RE.findall(text)
    return tokens + [f"{a} {b}" for a, b in itertools.pairwise(tokens)]


def corpus_files() -> list[Path]:
    return sorted(CORPUS_DIR.glob("*.jsonl"))


def corpus_digest(paths: Iterable[Path] | None = None) -> str:
    """SHA-256 over the corpus files' names and bytes: the artifact records it, a test compares it."""
    digest = hashlib.sha256()
    for path in sorted(paths if paths is not None else corpus_files()):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


# --- Inference ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prediction:
    """The model's probabilities for one utterance: `level` over LEVEL classes, `self_harm` over none/first/third."""

    level: dict[str, float]
    self_harm: dict[str, float]

    @property
    def top_level(self) -> str:
        return max(self.level, key=self.level.__getitem__)


class _Block:
    """One TF-IDF block: term -> column, IDF per column, and the coefficient rows of every head."""

    __slots__ = ("idf", "index", "terms", "weights")

    def __init__(self, terms: Sequence[str], idf: Sequence[float], weights: Sequence[Sequence[float]]) -> None:
        self.terms = list(terms)
        self.index = {term: i for i, term in enumerate(self.terms)}
        self.idf = np.asarray(idf, dtype=np.float64)
        self.weights = np.asarray(weights, dtype=np.float64)  # columns x outputs (all heads side by side)

    def features(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """The utterance's columns and their L2-normalised TF-IDF values (None when no term is known)."""
        index = self.index
        return self.features_from_columns(Counter(index[term] for term in terms if term in index))

    def features_from_columns(self, counts: Counter[int]) -> tuple[np.ndarray, np.ndarray] | None:
        if not counts:
            return None
        columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        values = tf * self.idf[columns]
        values /= math.sqrt(float(values @ values))
        return columns, values

    def contribution(self, found: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray | None:
        if found is None:
            return None
        columns, values = found
        result: np.ndarray = values @ self.weights[columns]
        return result


class TriageModel:
    def __init__(self, artifact: dict[str, Any]) -> None:
        if artifact.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"not a triage model artifact: format {artifact.get('format')!r}")
        self.artifact_meta = {key: artifact[key] for key in ("format", "corpus_sha256", "trained") if key in artifact}
        self.corpus_sha256: str = artifact["corpus_sha256"]
        heads = artifact["heads"]
        self.level_classes: list[str] = heads["level"]["classes"]
        self.self_harm_classes: list[str] = heads["self_harm"]["classes"]
        self._split = len(self.level_classes)
        self._intercept = np.asarray(heads["level"]["intercept"] + heads["self_harm"]["intercept"], dtype=np.float64)
        blocks = artifact["blocks"]
        self._char = _Block(blocks["char"]["terms"], blocks["char"]["idf"], blocks["char"]["weights"])
        self._word = _Block(blocks["word"]["terms"], blocks["word"]["idf"], blocks["word"]["weights"])
        self.thresholds: dict[str, float] = artifact.get("thresholds", {})
        # A word's character n-grams depend on the word alone: their columns are cached per word (bounded), which
        # makes the character block one dictionary lookup per word for the words callers keep using.
        index = self._char.index
        self._word_columns = lru_cache(maxsize=WORD_CACHE_SIZE)(
            lambda word: tuple(index[gram] for gram in word_char_ngrams(word) if gram in index)
        )

    def predict(self, text: str) -> Prediction:
        normalised = model_text(text)
        scores = self._intercept.copy()
        words = normalised.split()
        char_counts: Counter[int] = Counter()
        for word in words:
            char_counts.update(self._word_columns(word))
        for part in (
            self._char.contribution(self._char.features_from_columns(char_counts)),
            self._word.contribution(self._word.features(word_ngrams(normalised))),
        ):
            if part is not None:
                scores += part
        return Prediction(
            level=_softmax(self.level_classes, scores[: self._split]),
            self_harm=_softmax(self.self_harm_classes, scores[self._split :]),
        )

    def top_terms(self, text: str, level: str, k: int = 5) -> list[tuple[str, float]]:
        """The word n-grams that pushed hardest towards `level` (for explanations): (term, contribution)."""
        output = self.level_classes.index(level)
        found = self._word.features(word_ngrams(model_text(text)))
        if found is None:
            return []
        columns, values = found
        contributions = values * self._word.weights[columns, output]
        terms = self._word.terms
        ranked = sorted(zip(columns.tolist(), contributions.tolist(), strict=True), key=lambda item: -item[1])
        return [(terms[column], round(value, 3)) for column, value in ranked[:k] if value > 0]


def _softmax(classes: list[str], scores: np.ndarray) -> dict[str, float]:
    exp = np.exp(scores - scores.max())
    probabilities = exp / exp.sum()
    return {name: float(p) for name, p in zip(classes, probabilities, strict=True)}


def load(path: Path = ARTIFACT_PATH) -> TriageModel:
    with path.open(encoding="utf-8") as handle:
        return TriageModel(json.load(handle))


@lru_cache(maxsize=1)
def default_model() -> TriageModel | None:
    """The shipped model, loaded once per process; None when no artifact exists (the rules then decide alone)."""
    if not ARTIFACT_PATH.exists():
        return None
    return load(ARTIFACT_PATH)
