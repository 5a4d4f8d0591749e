"""Free-text understanding: normalise how citizens type, then rank topics by phrasings.

Why not a plain fuzzy string ratio: "kk hilang" and "ktp hilang" are one edit apart yet mean
different documents, and Lontar must never answer the wrong document with confidence. So
rapidfuzz is used where fuzziness helps (repairing misspelt words against the vocabulary of
the content's phrasings), and topics are scored by which *distinctive* words they share with
the message (inverse topic frequency), so the document word decides, not the filler.
"""

from __future__ import annotations

import math
import re
import unicodedata
import weakref
from collections import defaultdict
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from flows.content import Content

CONFIDENT = 68  # top score needed to answer directly
MARGIN = 12  # ... and this far ahead of the next topic
CLOSE = 42  # below this nothing is offered
ALTERNATIVES_WITHIN = 22  # offer topics scoring within this of the best
MAX_TOKENS = 60  # a 10,000-character message is read from its beginning
UNKNOWN_WEIGHT = 0.6  # a word no phrasing knows still dilutes the match a little
SPELL_CUTOFF = 80
SHORT_SPELL_CUTOFF = 85

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_REPEATS = re.compile(r"([^\W\d_])\1{2,}", re.UNICODE)
_SUFFIXES = ("nya", "lah", "kah", "pun", "ku", "mu")
_CONFIXES = (("ke", "an"), ("pe", "an"), ("per", "an"), ("pen", "an"), ("peng", "an"))
_PREFIXES = ("di", "ter", "ber", "meng", "mem", "men", "me", "ke", "se")


@dataclass(frozen=True)
class Scored:
    topic: str
    score: int


@dataclass(frozen=True)
class Match:
    """`topic` is set only when confident; `alternatives` are the other ranked candidates."""

    topic: str | None
    score: int
    alternatives: tuple[Scored, ...]
    ranked: tuple[Scored, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "topic": self.topic,
            "score": self.score,
            "alternatives": [{"topic": s.topic, "score": s.score} for s in self.alternatives],
        }


def _strip_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NON_WORD.sub(" ", text)
    return _REPEATS.sub(r"\1", text)


class Understander:
    """An index over one `Content`; build it once (see `understander`)."""

    def __init__(self, content: Content):
        lang = content.language
        self._words = {k: v for k, v in lang.words.items()}
        self._phrases = sorted(
            ((f" {k} ", f" {v} ") for k, v in lang.phrases.items()),
            key=lambda kv: -len(kv[0]),
        )
        self._stop = frozenset(lang.stopwords)
        self._smalltalk = frozenset(
            t.id for t in content.topics.values() if t.kind == "smalltalk"
        )
        # phrasing index: each phrasing is a set of content words belonging to one topic
        self._phrasing_topic: list[str] = []
        self._phrasing_tokens: list[frozenset[str]] = []
        for topic in content.all_topics.values():
            phrasings = set(topic.phrasings) | {topic.label.id, topic.label.en}
            for phrase in phrasings:
                tokens = frozenset(self._content_tokens(self._rewrite(phrase)))
                if tokens:
                    self._phrasing_topic.append(topic.id)
                    self._phrasing_tokens.append(tokens)
        topics_with: dict[str, set[str]] = defaultdict(set)
        for topic_id, tokens in zip(self._phrasing_topic, self._phrasing_tokens, strict=True):
            for tok in tokens:
                topics_with[tok].add(topic_id)
        n_topics = len(content.all_topics)
        self._weight = {
            tok: 1.0 + math.log(n_topics / len(ts)) for tok, ts in topics_with.items()
        }
        self._postings: dict[str, list[int]] = defaultdict(list)
        for i, tokens in enumerate(self._phrasing_tokens):
            for tok in tokens:
                self._postings[tok].append(i)
        self._phrasing_weight = [
            sum(self._weight[t] for t in tokens) for tokens in self._phrasing_tokens
        ]
        self._vocab = sorted(self._weight)
        self._known = frozenset(self._vocab) | self._stop
        self._spell_cache: dict[str, str | None] = {}

    # -- normalisation -----------------------------------------------------------------------

    def _rewrite(self, text: str) -> str:
        words = [self._words.get(w, w) for w in _strip_text(text).split()]
        joined = f" {' '.join(words)} "
        for key, value in self._phrases:
            if key in joined:
                joined = joined.replace(key, value)
        return " ".join(self._words.get(w, w) for w in joined.split())

    def normalize(self, text: str) -> str:
        """Lower-case, strip punctuation and repeats, expand slang and fix spelling."""
        tokens = self._rewrite(text).split()[:MAX_TOKENS]
        return " ".join(self._correct(t) for t in tokens)

    def _content_tokens(self, normalized: str) -> list[str]:
        return [t for t in normalized.split() if t not in self._stop]

    def _correct(self, token: str) -> str:
        if token in self._known or token.isdigit():
            return token
        if token in self._spell_cache:
            return self._spell_cache[token] or token
        fixed = self._stem(token)
        if fixed is None and len(token) >= 4:
            # short words need a closer match: "harga" must not become "warga"
            cutoff = SPELL_CUTOFF if len(token) >= 6 else SHORT_SPELL_CUTOFF
            best = process.extractOne(token, self._vocab, scorer=fuzz.ratio, score_cutoff=cutoff)
            fixed = best[0] if best else None
        if len(self._spell_cache) < 50_000:
            self._spell_cache[token] = fixed
        return fixed or token

    def _stem(self, token: str) -> str | None:
        """Undo the commonest Indonesian affixes (`ktpnya`, `kehilangan`, `dibuat`)."""
        for suffix in _SUFFIXES:
            if token.endswith(suffix) and token[: -len(suffix)] in self._known:
                return token[: -len(suffix)]
        for pre, suf in _CONFIXES:
            core = token[len(pre): -len(suf)]
            if token.startswith(pre) and token.endswith(suf) and core in self._known:
                return core
        for pre in _PREFIXES:
            if token.startswith(pre) and token[len(pre):] in self._known:
                return token[len(pre):]
        return None

    # -- ranking -----------------------------------------------------------------------------

    def rank(self, text: str, normalized: str | None = None) -> list[Scored]:
        """Every topic sharing a word with the message, best first, scores 0-100."""
        if normalized is None:
            normalized = self.normalize(text)
        tokens = set(self._content_tokens(normalized))
        if not tokens:
            return []
        query_weight = sum(self._weight.get(t, UNKNOWN_WEIGHT) for t in tokens)
        matched: dict[int, float] = defaultdict(float)
        for tok in tokens:
            w = self._weight.get(tok)
            if w is None:
                continue
            for i in self._postings[tok]:
                matched[i] += w
        best: dict[str, float] = {}
        for i, m in matched.items():
            covers_phrasing = m / self._phrasing_weight[i]
            covers_query = m / query_weight
            score = 100 * covers_phrasing * (0.55 + 0.45 * covers_query)
            topic = self._phrasing_topic[i]
            if score > best.get(topic, 0.0):
                best[topic] = score
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
        substantive = [kv for kv in ranked if kv[0] not in self._smalltalk]
        if substantive and substantive[0][1] >= CLOSE:
            # a greeting in front of a question: answer the question
            ranked = substantive
        return [Scored(t, round(s)) for t, s in ranked]

    def match(self, text: str, normalized: str | None = None) -> Match:
        """Rank, then decide: a confident topic, a close call, or nothing."""
        ranked = self.rank(text, normalized)
        if not ranked or ranked[0].score < CLOSE:
            return Match(None, ranked[0].score if ranked else 0, (), tuple(ranked[:3]))
        top = ranked[0]
        runner_up = ranked[1].score if len(ranked) > 1 else 0
        if top.score >= CONFIDENT and top.score - runner_up >= MARGIN:
            rest = tuple(s for s in ranked[1:3] if s.score >= CLOSE)
            return Match(top.topic, top.score, rest, tuple(ranked[:3]))
        close = tuple(
            s for s in ranked[:3] if s.score >= max(CLOSE, top.score - ALTERNATIVES_WITHIN)
        )
        return Match(None, top.score, close, tuple(ranked[:3]))


_CACHE: weakref.WeakKeyDictionary[Content, Understander] = weakref.WeakKeyDictionary()


def understander(content: Content) -> Understander:
    """The index for this content, built on first use."""
    found = _CACHE.get(content)
    if found is None:
        found = _CACHE[content] = Understander(content)
    return found
