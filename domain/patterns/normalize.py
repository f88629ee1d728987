"""Masking normalization: the variable parts of a message become `<*>` so that one print statement gives one text.

Why masks first: hashing or templating raw text splits every issue that carries an id, a number, an address or a
time. The masks run in a fixed order (most specific first) so that, say, an IPv4 address is not eaten by the
number mask; they are general (no data-set specific rule).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

WILDCARD = "<*>"

_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s\"'<>()\[\]{}]+", re.I), WILDCARD),  # URLs
    (re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+"), WILDCARD),  # emails
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I), WILDCARD),  # UUIDs
    # timestamps: ISO-like dates with optional time, then bare clock times
    (re.compile(r"\b\d{2,4}[-/.]\d{1,2}[-/.]\d{1,4}"
                r"(?:[T ]\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?)?"), WILDCARD),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d+)?\b"), WILDCARD),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b"), WILDCARD),  # IPv4 (+port)
    (re.compile(r"\b(?:[0-9a-f]{1,4}:){3,7}[0-9a-f]{1,4}\b", re.I), WILDCARD),  # IPv6 (full form)
    (re.compile(r"\b[\w\-]+(?:\.[\w\-]+)+:\d{1,5}\b"), WILDCARD),  # host.name:port
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), WILDCARD),  # 0x hex
    # sizes and durations with their unit (`1.5 KB`, `<1 sec`, `250ms`): one value, however it is written
    (re.compile(r"<?\b\d+(?:\.\d+)?\s?(?:[kmgtp]?i?b|bytes?|ms|us|ns|secs?|seconds?|mins?|minutes?|s|h)\b", re.I),
     WILDCARD),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I), WILDCARD),  # long hex (shas, trace ids)
    (re.compile(r"(?<![\w.])(?:[a-z]:)?(?:[\\/][\w.\-$@~+]+){2,}[\\/]?", re.I), WILDCARD),  # file paths
    # numbers and ids glued to words (blk_-123, job_42_0001, R02-M1, v2): any run holding a digit
    (re.compile(r"[\w\-]*\d[\w\-]*"), WILDCARD),
)
_REPEATED_PUNCT = re.compile(r"([^\w\s<>*])\1+")
_GLUED_WILDCARDS = re.compile(r"<\*>(?:[.:\-_/]?<\*>)+")
_ANNOTATED_WILDCARD = re.compile(r"<\*>\s*[(\[]<\*>[)\]]")  # `<*> (<*>)`: a value and its restatement
_WILDCARD_RUNS = re.compile(r"<\*>(?:\s+<\*>)+")  # a variable-length list of values


def mask(text: str) -> str:
    """The text with every variable part replaced by `<*>` and runs of whitespace collapsed; case is kept."""
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    text = _REPEATED_PUNCT.sub(r"\1", text)
    text = _GLUED_WILDCARDS.sub(WILDCARD, text)
    text = _ANNOTATED_WILDCARD.sub(WILDCARD, text)
    text = _WILDCARD_RUNS.sub(WILDCARD, text)
    return " ".join(text.split())


def tokens(text: str) -> tuple[str, ...]:
    """The masked text split on whitespace: the unit the template match compares position by position."""
    return tuple(mask(text).split())


def digest(parts: Iterable[str]) -> str:
    """A stable hex digest of the parts (SHA-256, parts separated by a unit separator)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
