"""Deterministic triage of caller utterances: the safety net that does not depend on the voice model.

`assess(text)` reads one transcribed caller utterance and returns the highest level it finds (emergency > urgent >
human > routine) with machine reason codes and the words that triggered them. It is pure Python and `re` (no Django,
no I/O), so the realtime pipeline can run it on every transcript segment without slowing the call.

How it reads an utterance:
1. Normalise: strip accents, lowercase, drop apostrophes ("can't" -> "cant", "baby's" -> "babys"), drop fillers
   ("um", "uh", "este", "o sea", "you know"), keep sentence and clause punctuation as tokens, collapse whitespace.
2. Find every rule match (one combined regex per set of languages, tried at each word start), see triage_lexicon.
3. Keep a match only if it survives the guards, each scoped to its clause (split on punctuation and "but", "pero"...):
   - idiom ("this bill is killing me", "me muero de hambre") and joke ("haha", "es broma") spans;
   - negation cue in the few tokens before the match ("no chest pain", "he's not bleeding anymore", "sin fiebre");
     a conjunction ends the negation's reach, so "no fever and now he can't breathe" still escalates;
   - resolution right after the match ("the bleeding stopped", "breathing is fine");
   - past or resolved event: a long-ago marker ("two years ago", "last year", "hace dos anos") or "he's fine now" in
     the sentence, unless the clause also says "now", "again", "still", "ahora", "otra vez"...;
   - hypothetical or question ("what are the signs of", "what should I do if", "que pasa si") before the match;
   - unrelated mention ("stroke rehab", "heart attack risk", "refill on my ...", "talk about choking").
4. Highest surviving level wins; reasons and evidence list every surviving match, most severe first.

Misses are worse than false alarms here, so where a rule and a guard disagree on an ambiguous phrasing the rules are
written to lean towards escalating.
"""

from __future__ import annotations

import bisect
import importlib
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import calls.triage.lexicon as lex
from organizations.vocabulary import EscalationLevel, TriageLevel

if TYPE_CHECKING:
    from organizations.models import Organization

EMERGENCY, URGENT, HUMAN, ROUTINE = TriageLevel.EMERGENCY, TriageLevel.URGENT, TriageLevel.HUMAN, TriageLevel.ROUTINE
UNCERTAIN = EscalationLevel.UNCERTAIN  # the agent's hedging (assess_agent), never a caller's level
LEVELS = (ROUTINE, HUMAN, URGENT, EMERGENCY)  # ascending severity
SEVERITY: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}
LANGUAGES = tuple(lex.RULES)  # languages with a lexicon: ("en", "es")
CLINIC_PHRASE = "clinic_phrase"


@dataclass(frozen=True, slots=True)
class Assessment:
    """What the rules concluded about one utterance. `evidence` holds normalised (accent-free, lowercase) spans;
    `vetoes` names the guards that suppressed a match or whose cue is in the text (negation, past, hypothetical,
    idiom, joke, resolved, unrelated): the policy lets them veto a weak model score."""

    level: str
    reasons: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    vetoes: tuple[str, ...] = ()

    @property
    def escalates(self) -> bool:
        return self.level != ROUTINE

    def as_dict(self) -> dict[str, Any]:
        return {"level": self.level, "reasons": list(self.reasons), "evidence": list(self.evidence)}


ROUTINE_ASSESSMENT = Assessment(ROUTINE)

# --- Normalisation ------------------------------------------------------------------------------------------------

_PRE = str.maketrans(
    {
        "\u2019": "'",
        "\u2018": "'",
        "`": "'",
        "\u00b4": "'",
        "\u02bc": "'",
        "\u00bf": ",",
        "\u00a1": ",",
        "\u2013": " ",
        "\u2014": " ",
    }
)
# ASCII after NFKD, as one byte table: letters lowercased, digits kept, . ! ? end a sentence, , ; : end a clause,
# the apostrophe is deleted ("can't" -> "cant") and everything else becomes a space.
_BYTE_TABLE = bytes(
    c + 32
    if 65 <= c <= 90
    else c
    if (97 <= c <= 122 or 48 <= c <= 57)
    else 46
    if c in b".!?"
    else 44
    if c in b",;:"
    else 32
    for c in range(256)
)
_DECIMAL_RE = re.compile(r"(\d)[.,]\d+")  # "101.5" is one temperature, not two sentences
_PUNCT_RUN_RE = re.compile(r"(?:^[.,] ?)+|[.,](?: [.,])+")
_YES_RE = re.compile(r"\b[sS][\u00ed\u00cd]\b")  # accented "si" means yes; unaccented "si" is the conditional "if"
_FILLER_RE = re.compile(r"\b(?:u+m+|u+h+m*|e+r+m+|h+m+|m+h*m+|e+h+|a+h+|este|o sea|pues|you know|i mean|like um)\b")
# Words that send a text through _FILLER_RE; most utterances have none and skip it.
_FILLER_HINTS = frozenset(lex.FILLER_HINTS.split())


def normalize(text: str) -> str:
    """Accent-free lowercase ASCII with punctuation as standalone "." and "," tokens and no fillers."""
    if not text.isascii():
        text = _YES_RE.sub("yes", text.translate(_PRE))
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    if "." in text or "," in text:
        text = _DECIMAL_RE.sub(r"\1", text)
    text = text.encode("ascii").translate(_BYTE_TABLE, b"'").decode("ascii")
    text = text.replace(".", " . ").replace(",", " , ")
    tokens = text.split()
    if not _FILLER_HINTS.isdisjoint(tokens):
        tokens = _FILLER_RE.sub(" ", " ".join(tokens)).split()
    text = " ".join(tokens)
    if _PUNCT_RUN_RE.search(text):  # "...", ", ." and leading punctuation carry no more than one break
        text = _PUNCT_RUN_RE.sub(lambda m: "." if "." in m.group() else ",", text).lstrip(" .,")
    return text


# --- Guards -------------------------------------------------------------------------------------------------------

# Tokens that end a clause (negation and past/hypothetical cues do not reach across them) and a sentence.
_CLAUSE_BREAKS = frozenset(lex.CLAUSE_BREAKS.split())
_NEGATION_STOP = frozenset(lex.NEGATION_STOP.split())
_NEGATION_WINDOW = 4


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(lex.expand(pattern))


_NEGATION_RE = _compile(lex.NEGATION)
_RESOLVED_AFTER_RE = _compile(lex.RESOLVED_AFTER)
_UNRELATED_BEFORE_RE = _compile(lex.UNRELATED_BEFORE)
_UNRELATED_AFTER = frozenset(lex.UNRELATED_AFTER.split())
# Cheap pre-checks: the regexes above can only match when one of these words is present.
_NEGATION_WORDS = frozenset(lex.NEGATION_WORDS.split())
_UNRELATED_BEFORE_WORDS = frozenset(lex.UNRELATED_BEFORE_WORDS.split())
_RESOLVED_AFTER_FIRST = frozenset(lex.RESOLVED_AFTER_FIRST.split())
# Cue phrases found in the same pass as the rules (one dispatch over word starts), then used by the guards.
IDIOM, JOKE, HYPO, SENTENCE_RESOLVED, RESOLVED_NOW, PAST, PRESENT = (
    "idiom",
    "joke",
    "hypothetical",
    "sentence_resolved",
    "resolved_now",
    "past",
    "present",
)
_CUES = (
    (IDIOM, lex.IDIOMS),
    (JOKE, lex.JOKES),
    (HYPO, lex.HYPOTHETICAL),
    (SENTENCE_RESOLVED, lex.SENTENCE_RESOLVED),
    (RESOLVED_NOW, lex.RESOLVED_NOW),
    (PAST, lex.PAST),
    (PRESENT, lex.PRESENT),
)
CUE = "cue"


class _Text:
    """A normalised utterance with its clause and sentence boundaries and cue spans, built once per assess()."""

    __slots__ = ("clause_ends", "clause_starts", "cues", "sentence_ends", "text")

    def __init__(
        self,
        text: str,
        cues: dict[str, list[tuple[int, int]]],
        clause_starts: list[int],
        clause_ends: list[int],
        sentence_ends: list[int],
    ) -> None:
        self.text = text
        self.cues = cues
        self.clause_starts = clause_starts
        self.clause_ends = clause_ends
        self.sentence_ends = sentence_ends

    def clause(self, pos: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.clause_starts, pos) - 1
        return self.clause_starts[i], self.clause_ends[i]

    def sentence(self, pos: int) -> tuple[int, int]:
        i = bisect.bisect_left(self.sentence_ends, pos)
        return (self.sentence_ends[i - 1] if i else 0), self.sentence_ends[i]

    def has_cue(self, kind: str, start: int, end: int) -> bool:
        return any(start <= s < end for s, _ in self.cues.get(kind, ()))


def _negated(pre_tokens: list[str], match_text: str) -> bool:
    window: list[str] = []
    for token in reversed(pre_tokens):
        if token in _NEGATION_STOP or len(window) == _NEGATION_WINDOW:
            break
        window.append(token)
    if _NEGATION_WORDS.isdisjoint(window) and not any(w.startswith("ningun") for w in window):
        return False  # the common case, without the regex
    pre = " ".join(reversed(window))
    return any(m.start() < len(pre) for m in _NEGATION_RE.finditer(pre + " " + match_text))


def _hypothetical(pre_tokens: list[str], match_text: str) -> bool:
    """An "if" or Spanish "si" before the match in its clause that makes it hypothetical ("what should I do if")."""
    if "if" not in pre_tokens and "si" not in pre_tokens:
        return False
    tokens = [*pre_tokens, match_text.split(" ", 1)[0]]
    for i, word in enumerate(tokens[:-1]):
        previous = tokens[i - 1] if i else ""
        if word == "if" and previous not in lex.IF_NOT_HYPOTHETICAL_AFTER:
            return True
        if (
            word == "si"
            and tokens[i + 1] in lex.SI_HYPOTHETICAL_BEFORE
            and previous not in lex.SI_NOT_HYPOTHETICAL_AFTER
        ):
            return True
    return False


def _guarded(t: _Text, start: int, end: int, level: str) -> str | None:
    """The name of the guard that suppresses the match text[start:end], or None if the match stands.

    The unrelated-mention guard is for symptoms only ("refill on my heart medication"); a request for a person stays
    a request whatever it is about."""
    for b_start, b_end in t.cues.get(IDIOM, ()):
        if b_start < end and start < b_end:
            return "idiom"
    if JOKE in t.cues and t.has_cue(JOKE, *t.sentence(start)):
        return "joke"
    c_start, c_end = t.clause(start)
    text = t.text
    before = text[c_start:start]
    match_text = text[start:end]
    pre_tokens = before.split()
    if pre_tokens and _negated(pre_tokens, match_text):
        return "negation"
    after = text[end:c_end]
    after_tokens = after.split()
    if level != HUMAN:
        if after_tokens and after_tokens[0] in _UNRELATED_AFTER:
            return "unrelated"
        tail = pre_tokens[-5:]
        if tail and not _UNRELATED_BEFORE_WORDS.isdisjoint(tail) and _UNRELATED_BEFORE_RE.search(" ".join(tail) + " "):
            return "unrelated"
    if (
        after_tokens
        and after_tokens[0] in _RESOLVED_AFTER_FIRST
        and _RESOLVED_AFTER_RE.match(" ".join(after_tokens[:5]))
    ):
        return "resolved"
    if before and (t.has_cue(HYPO, c_start, start) or _hypothetical(pre_tokens, match_text)):
        return "hypothetical"
    if t.has_cue(PAST, c_start, c_end) or t.has_cue(SENTENCE_RESOLVED, *t.sentence(start)):
        resolved_now = t.cues.get(RESOLVED_NOW, ())
        present = any(
            c_start <= p < c_end and not any(r_start <= p < r_end for r_start, r_end in resolved_now)
            for p, _ in t.cues.get(PRESENT, ())
        )
        if not present:
            return "past"
    return None


# --- Rule compilation ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    level: str
    reason: str
    requires: re.Pattern[str] | None  # a context clue that must occur somewhere in the utterance


_WORD_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
_TEXT_CHARS = frozenset(_WORD_CHARS + " .,")
_PREFIX_LEN = 3
_PREFIX_CAP = 4000
_Prefixes = frozenset[str] | None  # None: too many or unknowable


def _prefixes(items: Any, k: int) -> _Prefixes:
    """Every string of length <= k that a parsed regex can begin with on normalised text (shorter: it can end there).

    Used only to bucket rules by the first characters they can match; an over-approximation is harmless (the regex
    still decides), an under-approximation would lose matches, so anything unclear returns None ("could be anything").
    """
    current = {""}
    for op, av in items:
        item = _item_prefixes(str(op), av, k)
        if item is None:
            return None
        current = {s if len(s) == k else (s + t)[:k] for s in current for t in item}
        if len(current) > _PREFIX_CAP:
            return None
        if all(len(s) == k for s in current):
            break
    return frozenset(current)


def _charset(av: Any) -> frozenset[str] | None:
    chars: set[str] = set()
    for op, arg in av:
        name = str(op)
        if name == "LITERAL":
            chars.add(chr(arg))
        elif name == "RANGE":
            chars.update(chr(c) for c in range(arg[0], arg[1] + 1))
        elif name == "CATEGORY" and str(arg) == "CATEGORY_DIGIT":
            chars.update("0123456789")
        elif name == "CATEGORY" and str(arg) == "CATEGORY_WORD":
            chars.update(_WORD_CHARS)
        else:
            return None
    return frozenset(chars & _TEXT_CHARS)


def _item_prefixes(name: str, av: Any, k: int) -> _Prefixes:
    if name == "LITERAL":
        return frozenset({chr(av)})
    if name == "IN":
        return _charset(av)
    if name in ("AT", "ASSERT", "ASSERT_NOT"):
        return frozenset({""})  # zero-width
    if name == "SUBPATTERN":
        return _prefixes(av[-1], k)
    if name == "BRANCH":
        out: set[str] = set()
        for alternative in av[1]:
            sub = _prefixes(alternative, k)
            if sub is None:
                return None
            out |= sub
        return frozenset(out)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, body = av
        sub = _prefixes(body, k)
        if sub is None:
            return None
        out = {""} if low == 0 else set()
        current = {""}
        for count in range(1, min(high, k) + 1):
            current = {s if len(s) == k else (s + t)[:k] for s in current for t in sub}
            if len(current) > _PREFIX_CAP:
                return None
            if count >= low:
                out |= current
        if low > k:
            out = {s for s in current if len(s) == k}
        return frozenset(out)
    return None


@dataclass(frozen=True, slots=True)
class _Dispatch:
    """Rules bucketed by the first characters they can match, so each word is tried against a handful of rules.

    Python's regex engine tries every alternative of an alternation in turn; trying each word only against the rules
    that can begin with its first three characters is what makes triage fast. Buckets are combined and compiled
    lazily per prefix (a finite set: the keys of the tables).
    """

    patterns: dict[int, str]
    by_len: tuple[dict[str, tuple[int, ...]], ...]  # by_len[n][prefix of length n] -> rule indexes
    anywhere: tuple[int, ...]  # rules whose first characters could not be bounded
    cache: dict[str, re.Pattern[str] | None]

    @classmethod
    def build(cls, branches: list[tuple[int, str]]) -> _Dispatch:
        # The stdlib's own parser, only used here to find each pattern's first characters. Imported by name: typeshed
        # has no stub for the private module, so a static import fails the type check.
        _parser: Any = importlib.import_module("re._parser")

        by_len: list[dict[str, list[int]]] = [{} for _ in range(_PREFIX_LEN + 1)]
        anywhere = []
        for index, pattern in branches:
            parsed = _parser.parse(pattern)
            for k in range(_PREFIX_LEN, 0, -1):
                prefixes = _prefixes(parsed, k)
                if prefixes is not None and "" not in prefixes:
                    for prefix in prefixes:
                        by_len[len(prefix)].setdefault(prefix, []).append(index)
                    break
            else:
                anywhere.append(index)
        return cls(
            patterns=dict(branches),
            by_len=tuple({key: tuple(value) for key, value in table.items()} for table in by_len),
            anywhere=tuple(anywhere),
            cache={},
        )

    def pattern_for(self, key: str) -> re.Pattern[str] | None:
        """The combined regex of every rule that can start with `key` (the next three characters of the text)."""
        try:
            return self.cache[key]
        except KeyError:
            pass
        indexes = set(self.anywhere)
        for n in range(1, len(key) + 1):
            indexes.update(self.by_len[n].get(key[:n], ()))
        # The empty named group closes each alternative, so m.lastgroup names the rule while the alternative still
        # starts with the pattern's own first literal, which the engine can reject without entering it.
        compiled = (
            re.compile("|".join(rf"(?:{self.patterns[i]})\b(?P<r{i}>)" for i in sorted(indexes))) if indexes else None
        )
        # Cache per distinct combination of buckets (bounded by the tables), not per arbitrary text.
        if len(self.cache) < 20_000:
            self.cache[key] = compiled
        return compiled


@dataclass(frozen=True, slots=True)
class _Lexicon:
    rules: dict[str, tuple[str, str, re.Pattern[str] | None]]  # marker group name -> (level, reason, context)
    plain: _Dispatch
    # Rules that need a context clue are matched separately, so one whose clue is missing never hides a plain rule
    # that starts at the same word.
    contextual: _Dispatch
    cues: _Dispatch
    by_key: dict[str, tuple[re.Pattern[str], ...]]

    def patterns_for(self, key: str) -> tuple[re.Pattern[str], ...]:
        """The (at most three) regexes to try at a word starting with `key`, cached per key."""
        patterns = tuple(
            p for p in (d.pattern_for(key) for d in (self.plain, self.contextual, self.cues)) if p is not None
        )
        if len(self.by_key) < 50_000:
            self.by_key[key] = patterns
        return patterns


@lru_cache(maxsize=16)
def _compiled(languages: frozenset[str]) -> _Lexicon:
    rules: list[_Rule] = []
    plain: list[tuple[int, str]] = []
    contextual: list[tuple[int, str]] = []
    for level in (EMERGENCY, URGENT, HUMAN):
        for lang in sorted(languages):
            for entry in lex.RULES[lang][level]:
                reason, pattern = entry[0], lex.expand(entry[1])
                requires = _compile(entry[2]) if len(entry) == 3 else None
                (contextual if requires else plain).append((len(rules), pattern))
                rules.append(_Rule(level, reason, requires))
    cues: list[tuple[int, str]] = []
    for kind, pattern in _CUES:
        cues.append((len(rules), lex.expand(pattern)))
        rules.append(_Rule(CUE, kind, None))
    by_name = {f"r{i}": (rule.level, rule.reason, rule.requires) for i, rule in enumerate(rules)}
    return _Lexicon(by_name, _Dispatch.build(plain), _Dispatch.build(contextual), _Dispatch.build(cues), by_key={})


def _scan(norm: str, languages: frozenset[str]) -> tuple[list[tuple[str, str, int, int]], _Text]:
    """One pass over the words: every rule match (level, reason, start, end) before guards, and a _Text holding the
    cue spans and the clause and sentence boundaries the guards need."""
    lexicon = _compiled(languages)
    rules, by_key, patterns_for = lexicon.rules, lexicon.by_key, lexicon.patterns_for
    candidates: list[tuple[str, str, int, int]] = []
    cues: dict[str, list[tuple[int, int]]] = {}
    clause_starts, clause_ends, sentence_ends = [0], [], []
    context_seen: dict[re.Pattern[str], bool] = {}
    pos = 0
    for word in norm.split(" "):
        start = pos
        pos += len(word) + 1
        if word in _CLAUSE_BREAKS:
            clause_ends.append(start)
            clause_starts.append(pos - 1)
            if word == ".":
                sentence_ends.append(start)
                continue
            if word == ",":
                continue
        patterns = by_key.get(norm[start : start + _PREFIX_LEN])
        if patterns is None:
            patterns = patterns_for(norm[start : start + _PREFIX_LEN])
        for pattern in patterns:
            m = pattern.match(norm, start)
            if m is None:
                continue
            level, reason, requires = rules[m.lastgroup]  # type: ignore[index]
            if level == CUE:
                cues.setdefault(reason, []).append((start, m.end()))
                continue
            if requires is not None:
                seen = context_seen.get(requires)
                if seen is None:
                    seen = context_seen[requires] = requires.search(norm) is not None
                if not seen:
                    continue
            candidates.append((level, reason, start, m.end()))
    clause_ends.append(len(norm))
    sentence_ends.append(len(norm))
    return candidates, _Text(norm, cues, clause_starts, clause_ends, sentence_ends)


@lru_cache(maxsize=256)
def _compiled_extra(items: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[re.Pattern[str], tuple[str, ...]] | None:
    branches: list[str] = []
    levels: list[str] = []
    for level, phrases in items:
        for phrase in phrases:
            norm = normalize(phrase).strip(" .,")
            if norm:
                branches.append(f"(?P<x{len(levels)}>{re.escape(norm)})")
                levels.append(level)
    if not branches:
        return None
    return re.compile(r"\b(?=(?:" + "|".join(branches) + r")\b)"), tuple(levels)


def _extra_key(extra_phrases: Mapping[str, Iterable[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    items = []
    for level, phrases in extra_phrases.items():
        if level not in SEVERITY or level == ROUTINE:
            raise ValueError(f"Unknown escalation level for a clinic phrase: {level!r}.")
        items.append((level, tuple(sorted({p for p in phrases if p and p.strip()}))))
    return tuple(sorted(items))


def _languages_key(languages: Iterable[str] | None) -> frozenset[str]:
    if languages is None:
        return frozenset(LANGUAGES)
    wanted = frozenset(code.split("-")[0].lower() for code in languages) & frozenset(LANGUAGES)
    # A clinic whose languages have no lexicon still gets every lexicon: a safety net is never switched off.
    return wanted or frozenset(LANGUAGES)


# --- Public API ---------------------------------------------------------------------------------------------------


def assess(
    text: str,
    *,
    languages: Iterable[str] | None = None,
    extra_phrases: Mapping[str, Iterable[str]] | None = None,
) -> Assessment:
    """Triage one caller utterance.

    `languages` limits the lexicons tried (codes such as "en", "es"; None or only unknown codes means all).
    `extra_phrases` maps a level ("emergency", "urgent", "human") to clinic phrases that escalate at that level; they
    match whole words after the same normalisation and obey the same negation, past and hypothetical guards.
    """
    norm = normalize(text)
    if not norm:
        return ROUTINE_ASSESSMENT
    candidates, t = _scan(norm, _languages_key(languages))
    found: list[tuple[int, int, str, str]] = []  # (-severity, position, reason, evidence)
    vetoes: set[str] = {cue for cue in (IDIOM, JOKE, HYPO) if cue in t.cues}
    if PAST in t.cues and PRESENT not in t.cues:
        vetoes.add(PAST)
    for level, reason, start, end in candidates:
        guard = _guarded(t, start, end, level)
        if guard is None:
            found.append((-SEVERITY[level], start, reason, norm[start:end]))
        else:
            vetoes.add(guard)
    if extra_phrases:
        compiled_extra = _compiled_extra(_extra_key(extra_phrases))
        if compiled_extra is not None:
            pattern, levels = compiled_extra
            for m in pattern.finditer(norm):
                name = m.lastgroup
                if name is None:
                    continue
                start, end = m.span(name)
                if _guarded(t, start, end, levels[int(name[1:])]) is None:
                    found.append((-SEVERITY[levels[int(name[1:])]], start, CLINIC_PHRASE, norm[start:end]))
    if not found:
        return Assessment(ROUTINE, vetoes=tuple(sorted(vetoes))) if vetoes else ROUTINE_ASSESSMENT
    found.sort()
    level = LEVELS[-found[0][0]]
    reasons = tuple(dict.fromkeys(reason for _, _, reason, _ in found))
    evidence = tuple(dict.fromkeys(span for _, _, _, span in found))
    return Assessment(level, reasons, evidence, tuple(sorted(vetoes)))


def explain(text: str, *, languages: Iterable[str] | None = None) -> list[dict[str, str]]:
    """Every rule match with the guard that suppressed it (or ""): for tuning and for triage_check --explain."""
    candidates, t = _scan(normalize(text), _languages_key(languages))
    out = []
    for level, reason, start, end in candidates:
        guard = _guarded(t, start, end, level) or ""
        out.append({"level": level, "reason": reason, "evidence": t.text[start:end], "suppressed_by": guard})
    return out


_AGENT_RES = tuple((reason, _compile(pattern)) for reason, pattern in lex.AGENT_HEDGES)


def assess_agent(text: str) -> Assessment | None:
    """Check one of the agent's own utterances for hedging or refusal ("I'm not sure", "I can't help with that",
    "no estoy seguro"): returns an `uncertain` Assessment, or None when the agent sounds sure of itself.

    This only classifies a single utterance. The pipeline raises at most one `uncertain` escalation per call: it
    records that it has done so and ignores later hedges on the same call, so an agent that hedges repeatedly does not
    flood the staff board.
    """
    norm = normalize(text)
    if not norm:
        return None
    for reason, pattern in _AGENT_RES:
        m = pattern.search(norm)
        if m:
            return Assessment(UNCERTAIN, (reason,), (m.group(0),))
    return None


def extra_phrases_for(organization: Organization | Any) -> dict[str, list[str]]:
    """The clinic's EscalationPhrase rows as the `extra_phrases` mapping assess() takes (level -> phrases)."""
    from organizations.models import EscalationPhrase

    mapping: dict[str, list[str]] = {}
    rows = EscalationPhrase.objects.filter(organization=organization).order_by("level", "phrase")
    for level, phrase in rows.values_list("level", "phrase"):
        mapping.setdefault(level, []).append(phrase)
    return mapping
