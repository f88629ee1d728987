"""Similar issues: lexical retrieval (BM25 over title and body, the title counted twice) with an inverted index.

Why lexical: for human-written tickets a ranked bag of words already finds most duplicates, runs offline on the
CPU with no model, and is deterministic. Scores are a suggestion, never an automatic link. Words are lower-cased
alphanumeric runs with numbers kept (versions, ticket and error numbers are telling in tickets) and compound names
not split (`NameNode` is more specific than `name` + `node`): both measured better on duplicate retrieval. The
index is online: document frequencies are those of the issues indexed so far, so nothing leaks from the future.
"""

from __future__ import annotations

import bisect
import heapq
import math
import re
from collections import Counter

import msgspec

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "can", "could", "did", "do", "does", "for", "from",
    "has", "have", "if", "in", "into", "is", "it", "its", "may", "not", "of", "on", "or", "our", "should", "so",
    "such", "than", "that", "the", "their", "then", "there", "these", "this", "to", "was", "we", "were", "when",
    "which", "while", "will", "with", "would", "you", "your", "i", "me", "my", "also", "after", "before", "any",
    "all", "been", "being", "more", "most", "no", "only", "other", "same", "some", "very", "what", "where", "how",
    "why", "who", "get", "got", "use", "used", "using",
))
TITLE_WEIGHT = 2


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def terms(title: str, body: str = "") -> Counter[str]:
    """The weighted bag of words of an issue: lower-cased alphanumeric runs without stop words."""
    bag: Counter[str] = Counter()
    for word in _words(title):
        bag[word] += TITLE_WEIGHT
    for word in _words(body):
        bag[word] += 1
    return bag


class Match(msgspec.Struct, frozen=True):
    key: str
    score: float
    """BM25: ranks, unbounded."""
    similarity: float
    """TF-IDF cosine of the two issues' words (0–1): what the API shows."""


class SimilarIndex:
    """An in-memory BM25 index; `before` restricts candidates to issues added earlier than a given one."""

    def __init__(self, k1: float = 1.2, b: float = 1.0, max_terms: int = 12, max_postings: int = 64) -> None:
        self.k1, self.b = k1, b
        self.max_terms, self.max_postings = max_terms, max_postings
        self._keys: list[str] = []
        self._position: dict[str, int] = {}
        self._lengths: list[int] = []
        self._postings: dict[str, list[tuple[int, int]]] = {}
        self._bags: list[Counter[str]] = []
        self._total_length = 0

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: str, bag: Counter[str]) -> None:
        """Index an issue once; adding a known key again is ignored (the first text stays)."""
        if key in self._position:
            return
        position = len(self._keys)
        self._keys.append(key)
        self._position[key] = position
        length = sum(bag.values())
        self._lengths.append(length)
        self._bags.append(bag)
        self._total_length += length
        for term, count in bag.items():
            self._postings.setdefault(term, []).append((position, count))

    def search(self, bag: Counter[str], limit: int = 10, before: str | None = None,
               exclude: str | None = None) -> list[Match]:
        """The best `limit` issues by BM25 score, ties broken by the earlier issue.

        Bounded work whatever the index size: only the query's `max_terms` heaviest terms (count over log document
        frequency: frequent in the query, rare in the index) are looked up, each over its `max_postings` most
        recent issues."""
        n = len(self._keys)
        if n == 0:
            return []
        horizon = self._position.get(before, n) if before is not None else n
        skip = self._position.get(exclude, -1) if exclude is not None else -1
        average = self._total_length / n or 1.0
        looked_up = sorted((term for term in bag if term in self._postings),
                           key=lambda term: (-(1 + math.log(bag[term])) / math.log(2 + len(self._postings[term])),
                                             term))[: self.max_terms]
        scores: dict[int, float] = {}
        get = scores.get
        lengths = self._lengths
        k1, base, slope = self.k1, self.k1 * (1 - self.b), self.k1 * self.b / average
        for term in looked_up:
            postings = self._postings[term]
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            weight = idf * (1 + math.log(bag[term])) * (k1 + 1)
            end = bisect.bisect_left(postings, (horizon, 0))
            for position, count in postings[max(0, end - self.max_postings):end]:
                scores[position] = get(position, 0.0) + weight * count / (count + base + slope * lengths[position])
        scores.pop(skip, None)
        best = [(-negative, score) for score, negative in
                heapq.nlargest(limit, [(score, -position) for position, score in scores.items()])]
        query = self._vector(bag)
        return [Match(self._keys[position], round(score, 4), round(self._cosine(query, position), 4))
                for position, score in best]

    def _vector(self, bag: Counter[str]) -> dict[str, float]:
        """Log tf times smoothed idf (a word the index has not seen counts as seen once), L2-normalized."""
        n = len(self._keys)
        vector = {}
        for term, count in bag.items():
            df = len(self._postings.get(term, ())) or 1
            vector[term] = (1 + math.log(count)) * math.log(1 + n / df)
        norm = math.sqrt(sum(value * value for value in vector.values())) or 1.0
        return {term: value / norm for term, value in vector.items()}

    def _cosine(self, query: dict[str, float], position: int) -> float:
        other = self._vector(self._bags[position])
        return min(1.0, sum(weight * other.get(term, 0.0) for term, weight in query.items()))
