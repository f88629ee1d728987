"""The grouping method: which pattern an issue belongs to, decided in layers, cheapest and most certain first.

1. A fingerprint the client supplied (`metadata.fingerprint`) wins over everything.
2. A deterministic fingerprint: the masked message plus the scope (service, component), the error type and the
   top stack frames. Same hash, same pattern: an O(1) lookup.
3. A template match within the same scope and token count (a Drain-style bucket): the share of positions where
   the issue's tokens equal the pattern's template. At or above `auto_attach` the issue joins the pattern and the
   template generalizes (differing positions become `<*>`); between `suggest` and `auto_attach` the issue founds
   its own pattern and the close one is kept as a suggestion a user may confirm (merge).
4. Human feedback as memory: a merge makes every fingerprint of the source point at the target (must-link); an
   unlink forbids that issue's fingerprint from joining that pattern again (cannot-link).

The workspace's `Policy` (settings → AI) may only hold a link back, never loosen one: with `auto_link` off a
fingerprint or template match becomes a suggestion (the issue founds its own pattern), and a template match below
`min_similarity` is treated like the middle band. A client fingerprint is the client's own grouping: it still links.

Over-grouping is the worse error (a merged pattern hides a failure), so the auto-attach threshold is strict.
Everything here is a pure function of the calls made, in order: the detector feeds it the event history.
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from domain.patterns.normalize import WILDCARD, digest, mask


class MatchMethod(StrEnum):
    CLIENT_FINGERPRINT = "client_fingerprint"
    FINGERPRINT = "fingerprint"
    TEMPLATE = "template"
    MERGE = "merge"
    MANUAL = "manual"
    NEW = "new"


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    auto_attach: float = 0.8
    suggest: float = 0.5
    min_constant_tokens: int = 1
    """A template must keep at least this many constant tokens: an all-wildcard template would swallow anything."""


DEFAULT_THRESHOLDS = Thresholds()
GROUPING_VERSION = 1


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    """What the workspace allows the grouper to link on its own: its AI settings `auto_link` and
    `confidence_threshold`, compared with the grouper's own similarity (1.0 for a fingerprint match)."""

    auto_link: bool = True
    min_similarity: float = 0.0


OPEN = Policy()


class Signal(msgspec.Struct, frozen=True, kw_only=True):
    """What grouping reads from an issue."""

    key: str
    text: str
    service: str | None = None
    component: str | None = None
    error_type: str | None = None
    frames: tuple[str, ...] = ()
    client_fingerprint: str | None = None


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Where one issue went and why: the explanation the API returns with every link."""

    pattern_key: str
    method: MatchMethod
    similarity: float
    fingerprint: str
    template: str
    created: bool
    suggested_pattern_key: str | None = None
    suggested_similarity: float | None = None
    held: bool = False
    """`auto_link` is off and the issue matched `suggested_pattern_key`: it founds its own pattern, and the grouper
    remembers nothing of it (later issues still find the pattern it matched)."""


class _Cluster:
    __slots__ = ("constants", "count", "pattern_key", "template")

    def __init__(self, pattern_key: str, template: list[str]) -> None:
        self.pattern_key = pattern_key
        self.template = template
        self.constants = sum(1 for token in template if token != WILDCARD)
        self.count = 1


def _scope(signal: Signal) -> str:
    return f"{(signal.service or '').lower()}\x1f{(signal.component or '').lower()}"


def fingerprint_of(signal: Signal, masked: str) -> str:
    """The deterministic fingerprint: scope, error type, top three frames and the masked message."""
    return digest((_scope(signal), (signal.error_type or "").lower(), *signal.frames[:3], masked))


def _similarity(template: list[str], tokens: list[str]) -> float:
    """The share of positions where the token equals the template's (a wildcard matches anything)."""
    same = 0
    for expected, token in zip(template, tokens, strict=True):
        if expected in (token, WILDCARD):
            same += 1
    return same / len(tokens) if tokens else 1.0


class Grouper:
    """The matcher's working state: a projection of the assignments made so far, rebuilt by replaying them."""

    def __init__(self, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> None:
        self.thresholds = thresholds
        self._by_client: dict[str, str] = {}
        self._by_fingerprint: dict[str, str] = {}
        self._buckets: dict[tuple[str, int, str, str], list[_Cluster]] = {}
        self._alias: dict[str, str] = {}
        self._cannot: set[tuple[str, str]] = set()

    def resolve(self, pattern_key: str) -> str:
        """The pattern a key stands for today, following merges."""
        while pattern_key in self._alias:
            pattern_key = self._alias[pattern_key]
        return pattern_key

    def assign(self, signal: Signal, policy: Policy = OPEN) -> Assignment:
        masked = mask(signal.text)
        fingerprint = fingerprint_of(signal, masked)
        if signal.client_fingerprint:
            known = self._by_client.get(signal.client_fingerprint)
            if known is not None:
                return Assignment(pattern_key=self.resolve(known), method=MatchMethod.CLIENT_FINGERPRINT,
                                  similarity=1.0, fingerprint=fingerprint, template=masked, created=False)
            self._by_client[signal.client_fingerprint] = signal.key
            self._by_fingerprint.setdefault(fingerprint, signal.key)
            return Assignment(pattern_key=signal.key, method=MatchMethod.NEW, similarity=1.0,
                              fingerprint=fingerprint, template=masked, created=True)
        known = self._by_fingerprint.get(fingerprint)
        if known is not None and (fingerprint, self.resolve(known)) not in self._cannot:
            pattern_key = self.resolve(known)
            if not policy.auto_link:
                return _held(signal, fingerprint, masked, pattern_key, 1.0)
            return Assignment(pattern_key=pattern_key, method=MatchMethod.FINGERPRINT, similarity=1.0,
                              fingerprint=fingerprint, template=masked, created=False)
        tokens = masked.split()
        lead = tokens[0] if tokens and WILDCARD not in tokens[0] else WILDCARD
        bucket_key = (_scope(signal), len(tokens), (signal.error_type or "").lower(), lead)
        bucket = self._buckets.setdefault(bucket_key, [])
        best: _Cluster | None = None
        best_similarity = -1.0
        for cluster in bucket:
            if (fingerprint, self.resolve(cluster.pattern_key)) in self._cannot:
                continue
            similarity = _similarity(cluster.template, tokens)
            if similarity > best_similarity:
                best, best_similarity = cluster, similarity
        if (best is not None and best_similarity >= self.thresholds.auto_attach
                and best_similarity >= policy.min_similarity):
            merged = [old if old == new else WILDCARD for old, new in zip(best.template, tokens, strict=True)]
            constants = sum(1 for token in merged if token != WILDCARD)
            if constants >= self.thresholds.min_constant_tokens:
                pattern_key = self.resolve(best.pattern_key)
                if not policy.auto_link:
                    return _held(signal, fingerprint, masked, pattern_key, best_similarity)
                best.template, best.constants = merged, constants
                best.count += 1
                self._by_fingerprint.setdefault(fingerprint, pattern_key)
                return Assignment(pattern_key=pattern_key, method=MatchMethod.TEMPLATE,
                                  similarity=round(best_similarity, 4), fingerprint=fingerprint,
                                  template=" ".join(merged), created=False)
        bucket.append(_Cluster(signal.key, tokens))
        self._by_fingerprint[fingerprint] = signal.key
        suggested = None
        suggested_similarity = None
        if best is not None and best_similarity >= self.thresholds.suggest:
            suggested = self.resolve(best.pattern_key)
            suggested_similarity = round(best_similarity, 4)
        return Assignment(pattern_key=signal.key, method=MatchMethod.NEW, similarity=1.0, fingerprint=fingerprint,
                          template=masked, created=True, suggested_pattern_key=suggested,
                          suggested_similarity=suggested_similarity)

    def merge(self, source_key: str, target_key: str) -> None:
        """A must-link: everything that went to the source now goes to the target."""
        source, target = self.resolve(source_key), self.resolve(target_key)
        if source != target:
            self._alias[source] = target

    def forbid(self, fingerprint: str, pattern_key: str) -> None:
        """A cannot-link: this fingerprint never joins that pattern again (an unlink by a user)."""
        self._cannot.add((fingerprint, self.resolve(pattern_key)))


def _held(signal: Signal, fingerprint: str, masked: str, match: str, similarity: float) -> Assignment:
    """A link `auto_link` holds back: a pattern of the issue's own, the match kept as the suggestion a user may
    confirm (link-pattern or merge)."""
    return Assignment(pattern_key=signal.key, method=MatchMethod.NEW, similarity=1.0, fingerprint=fingerprint,
                      template=masked, created=True, suggested_pattern_key=match,
                      suggested_similarity=round(similarity, 4), held=True)
