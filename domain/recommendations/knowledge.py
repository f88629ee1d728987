"""The knowledge base Causeloop ships: playbooks of fixes for common failure modes, and the pure matcher that ranks
them for a pattern.

A playbook matches a pattern by keywords in its fingerprint (domain, component, error signature) and template; the
score is 1 + 0.1 per keyword group when every group hits. `expected_loops_prevented` is the pattern's predicted
recurrence rate (the prediction model's decayed rate, when a prediction exists; else the observed rate: issues per
day over the span it was seen, at least one day) times the horizon (90 days) times the playbook's effectiveness for
its impact; the proposals are ranked by it (`rank` 1 = best), then by match score and effort.
See docs/recommendations.md.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

import msgspec

HORIZON_DAYS = 90
"""The horizon over which a fix is expected to prevent recurrences."""
MAX_PROPOSALS = 3
EFFECTIVENESS = {"high": 0.9, "medium": 0.6, "quick_win": 0.4}
"""The share of recurrences a fix of this impact is expected to prevent."""
EFFORT_ORDER = {"low": 0, "medium": 1, "high": 2}


class RecommendationType(StrEnum):
    CODE_FIX = "code_fix"
    CONFIG_CHANGE = "config_change"
    PROCESS = "process"
    MONITORING = "monitoring"


class Impact(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    QUICK_WIN = "quick_win"


class Effort(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class PlaybookStep(msgspec.Struct, frozen=True, kw_only=True):
    title: str
    description: str


class Playbook(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    title: str
    type: RecommendationType
    impact: Impact
    effort: Effort
    overview: str
    keywords: tuple[tuple[str, ...], ...]
    """Keyword groups: each group hits when any of its words (regex fragments) appears; all groups must hit."""
    steps: tuple[PlaybookStep, ...]


def _s(title: str, description: str) -> PlaybookStep:
    return PlaybookStep(title=title, description=description)


PLAYBOOKS: tuple[Playbook, ...] = (
    Playbook(key="timeout-budget", title="Set explicit timeouts and a retry budget on the failing call",
             type=RecommendationType.CODE_FIX, impact=Impact.HIGH, effort=Effort.MEDIUM,
             overview="Calls time out repeatedly: bound each call with a deadline shorter than the caller's, retry "
                      "idempotent calls with jittered backoff within a budget, and open a circuit breaker when the "
                      "dependency stays slow.",
             keywords=(("timeout", "timed out", "deadline exceeded", "time out"),),
             steps=(_s("Measure the call's latency", "Find p99 latency of the failing call and its caller's deadline."),
                    _s("Set a per-call deadline", "Configure a timeout below the caller's deadline."),
                    _s("Retry with backoff", "Retry idempotent calls with jittered exponential backoff and a budget."),
                    _s("Add a circuit breaker", "Fail fast while the dependency stays slow; alert on open circuits."))),
    Playbook(key="timeout-alerting", title="Alert on the dependency's latency before calls time out",
             type=RecommendationType.MONITORING, impact=Impact.QUICK_WIN, effort=Effort.LOW,
             overview="Timeouts follow rising latency: alert on the dependency's p99 so the team acts before users "
                      "see errors.",
             keywords=(("timeout", "timed out", "deadline exceeded", "latency", "slow"),),
             steps=(_s("Chart p99 latency", "Add the dependency's p99 latency to the service dashboard."),
                    _s("Alert on a threshold", "Page when p99 stays above 80% of the timeout for 5 minutes."))),
    Playbook(key="connection-pool", title="Right-size the connection pool and release connections on every path",
             type=RecommendationType.CONFIG_CHANGE, impact=Impact.HIGH, effort=Effort.MEDIUM,
             overview="The pool runs out of connections: size it from the measured concurrency, bound the wait for a "
                      "connection, and fix code paths that hold connections across slow work or leak them on errors.",
             keywords=(("pool", "connection", "connections"),
                       ("exhaust", "too many", "no available", "timeout", "timed out", "limit", "max")),
             steps=(_s("Measure pool usage", "Record in-use, idle and waiting connections per instance."),
                    _s("Size the pool", "Set the pool size from peak concurrency; keep the database's limit in mind."),
                    _s("Bound the acquire wait", "Fail fast when no connection is free within a short timeout."),
                    _s("Fix leaks", "Release connections in finally blocks; never hold one across remote calls."))),
    Playbook(key="certificate-expiry", title="Automate certificate renewal and alert before expiry",
             type=RecommendationType.PROCESS, impact=Impact.HIGH, effort=Effort.LOW,
             overview="Certificates expire and break TLS: renew them automatically (ACME or the platform's manager) "
                      "and alert 30 days before any certificate expires.",
             keywords=(("certificate", "cert", "x509", "tls", "ssl"), ("expir", "expired", "not valid", "verify")),
             steps=(_s("Inventory certificates", "List every certificate the service presents or trusts."),
                    _s("Automate renewal", "Move renewal to ACME or the platform's certificate manager."),
                    _s("Alert before expiry", "Alert 30 and 7 days before any certificate expires."))),
    Playbook(key="disk-full", title="Add disk-usage alerts and automatic cleanup or growth",
             type=RecommendationType.CONFIG_CHANGE, impact=Impact.HIGH, effort=Effort.LOW,
             overview="Volumes fill up: rotate and cap logs, clean temporary data on a schedule, alert at 80% usage "
                      "and grow volumes automatically where the platform allows.",
             keywords=(("disk", "volume", "no space", "enospc", "filesystem", "storage"),
                       ("full", "no space", "enospc", "quota", "exceeded", "usage")),
             steps=(_s("Find what grows", "Identify the directories that fill the volume."),
                    _s("Rotate and cap", "Rotate logs with a size cap; expire temporary files."),
                    _s("Alert at 80%", "Alert when usage crosses 80% and when it grows fast."),
                    _s("Grow automatically", "Enable volume auto-expansion or add headroom."))),
    Playbook(key="out-of-memory", title="Set memory limits from measured usage and fix the growth",
             type=RecommendationType.CODE_FIX, impact=Impact.HIGH, effort=Effort.HIGH,
             overview="Processes run out of memory: profile the heap under load, fix unbounded caches and buffers, "
                      "and set limits and requests from measured peaks.",
             keywords=(("out of memory", "oom", "outofmemory", "memory", "heap"),
                       ("out of memory", "oom", "killed", "exceeded", "exhausted", "leak", "space")),
             steps=(_s("Profile the heap", "Take heap profiles under production-like load."),
                    _s("Bound caches and buffers", "Cap every cache and queue; stream large payloads."),
                    _s("Set limits from peaks", "Set memory requests and limits from the measured peak plus margin."))),
    Playbook(key="deploy-regression", title="Gate deploys with canaries and automatic rollback",
             type=RecommendationType.PROCESS, impact=Impact.HIGH, effort=Effort.MEDIUM,
             overview="Failures follow releases: ship through a canary stage that compares error rates with the "
                      "baseline and rolls back automatically.",
             keywords=(("deploy", "release", "rollout", "regression", "version", "upgrade", "migration"),),
             steps=(_s("Mark deploys", "Record each deploy as an event on the error dashboards."),
                    _s("Add a canary stage", "Send a small share of traffic to the new version first."),
                    _s("Roll back automatically", "Roll back when the canary's error rate exceeds the baseline."))),
    Playbook(key="dependency-outage", title="Degrade gracefully when the upstream dependency is down",
             type=RecommendationType.CODE_FIX, impact=Impact.MEDIUM, effort=Effort.MEDIUM,
             overview="An upstream service or provider fails: serve cached or partial results, queue writes for "
                      "later, and show a clear status instead of failing the whole request.",
             keywords=(("unavailable", "503", "502", "bad gateway", "connection refused", "upstream", "outage",
                        "unreachable", "dns", "econnrefused", "down"),),
             steps=(_s("List the dependency's callers", "Find every path that fails when it is down."),
                    _s("Add a fallback", "Serve cached or partial results; queue writes for retry."),
                    _s("Watch the provider", "Subscribe to the provider's status page and alert on it."))),
    Playbook(key="rate-limiting", title="Respect rate limits with client-side throttling and backoff",
             type=RecommendationType.CODE_FIX, impact=Impact.MEDIUM, effort=Effort.LOW,
             overview="Calls are rejected for exceeding a rate limit: throttle on the client, honour Retry-After, "
                      "batch requests and ask for a higher quota where needed.",
             keywords=(("rate limit", "rate-limit", "ratelimit", "429", "too many requests", "throttl", "quota"),),
             steps=(_s("Measure request rates", "Chart requests per second against the provider's limit."),
                    _s("Throttle on the client", "Add a token bucket below the limit; honour Retry-After."),
                    _s("Batch and cache", "Batch requests and cache answers to cut the volume."))),
    Playbook(key="flaky-test", title="Quarantine and fix the flaky test",
             type=RecommendationType.PROCESS, impact=Impact.QUICK_WIN, effort=Effort.LOW,
             overview="A test fails intermittently: quarantine it so it stops blocking merges, then remove its "
                      "dependence on timing, ordering or shared state.",
             keywords=(("test", "spec", "ci", "build", "pipeline"), ("flaky", "flake", "intermittent", "fail")),
             steps=(_s("Quarantine", "Move the test to a non-blocking suite and open a ticket."),
                    _s("Find the cause", "Rerun it in a loop; look for sleeps, ordering and shared state."),
                    _s("Fix and restore", "Wait on conditions instead of time; restore it to the suite."))),
    Playbook(key="null-reference", title="Validate inputs and handle missing values at the boundary",
             type=RecommendationType.CODE_FIX, impact=Impact.MEDIUM, effort=Effort.LOW,
             overview="Code dereferences missing values: validate inputs where they enter and make absence explicit "
                      "in types.",
             keywords=(("null", "none", "nil", "undefined", "nullpointer", "keyerror", "attributeerror"),),
             steps=(_s("Find the source", "Trace where the missing value enters the system."),
                    _s("Validate at the boundary", "Reject or default missing fields where input is parsed."),
                    _s("Add a regression test", "Cover the missing-value case with a test."))),
    Playbook(key="auth-failure", title="Rotate credentials safely and alert on authentication failures",
             type=RecommendationType.PROCESS, impact=Impact.MEDIUM, effort=Effort.LOW,
             overview="Calls fail authentication: credentials expire or are rotated without the consumers, so rotate "
                      "with overlap and alert on 401/403 spikes.",
             keywords=(("unauthorized", "401", "403", "forbidden", "authentication", "invalid token", "expired token",
                        "credentials", "permission denied"),),
             steps=(_s("Inventory credentials", "List the credentials the service uses and their expiry."),
                    _s("Rotate with overlap", "Keep the old credential valid until every consumer has the new one."),
                    _s("Alert on spikes", "Alert when authentication failures exceed their baseline."))),
    Playbook(key="database-deadlock", title="Order locks consistently and retry deadlocked transactions",
             type=RecommendationType.CODE_FIX, impact=Impact.MEDIUM, effort=Effort.MEDIUM,
             overview="Transactions deadlock or wait on locks: take locks in one order, keep transactions short and "
                      "retry the loser of a deadlock.",
             keywords=(("deadlock", "lock wait", "lock timeout", "could not serialize", "serialization failure"),),
             steps=(_s("Find the conflicting statements", "Read the database's deadlock report."),
                    _s("Order the locks", "Take row locks in a consistent order; shorten transactions."),
                    _s("Retry safely", "Retry transactions that lost a deadlock, with a bound."))),
    Playbook(key="generic-runbook", title="Write a runbook and alert for this recurring failure",
             type=RecommendationType.MONITORING, impact=Impact.QUICK_WIN, effort=Effort.LOW,
             overview="The failure recurs without a known playbook: capture the diagnosis and the fix in a runbook, "
                      "and alert on the pattern's first occurrence so it is handled before it loops.",
             keywords=(),
             steps=(_s("Write the runbook", "Record the symptoms, diagnosis and the fix that worked."),
                    _s("Alert on recurrence", "Alert the owning team when the pattern recurs."),
                    _s("Schedule a root-cause review", "Book a review to remove the cause."))),
)
PLAYBOOK_BY_KEY = {playbook.key: playbook for playbook in PLAYBOOKS}


class PatternFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the matcher knows about a pattern."""

    domain: str | None = None
    service: str | None = None
    component: str | None = None
    error_signature: str = ""
    template: str = ""
    issue_count: int = 0
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    predicted_rate_per_day: float | None = None
    """The prediction model's current recurrence rate for the pattern (None until it has predicted one)."""


class Proposal(msgspec.Struct, frozen=True, kw_only=True):
    playbook: Playbook
    rank: int
    score: float
    expected_loops_prevented: float


def rate_per_day(facts: PatternFacts) -> float:
    """The pattern's observed rate: issues per day over the span it was seen (at least one day)."""
    if facts.issue_count <= 0 or facts.first_seen_at is None or facts.last_seen_at is None:
        return 0.0
    span = max(1.0, (facts.last_seen_at - facts.first_seen_at).total_seconds() / 86_400)
    return facts.issue_count / span


def expected_loops(facts: PatternFacts, impact: Impact) -> float:
    """Recurrences over the horizon the fix is expected to prevent: the predicted rate when there is one (it weighs
    recent occurrences more), else the observed one."""
    rate = facts.predicted_rate_per_day if facts.predicted_rate_per_day is not None else rate_per_day(facts)
    return round(rate * HORIZON_DAYS * EFFECTIVENESS[impact.value], 1)


def _text(facts: PatternFacts) -> str:
    parts = (facts.domain, facts.component, facts.service, facts.error_signature, facts.template)
    return " ".join(part for part in parts if part).lower()


_GROUPS = {playbook.key: tuple(re.compile(r"\b(?:" + "|".join(re.escape(word) for word in group) + ")")
                               for group in playbook.keywords) for playbook in PLAYBOOKS}
"""Each keyword group as one compiled pattern: a word matches at a word start."""


def score(playbook: Playbook, text: str) -> float:
    """1 + 0.1 per keyword group when every group hits (0 when any misses); the generic playbook scores 0.1."""
    if not playbook.keywords:
        return 0.1
    groups = _GROUPS.get(playbook.key) or ()
    if not all(group.search(text) for group in groups):
        return 0.0
    return 1.0 + 0.1 * len(playbook.keywords)


def match(facts: PatternFacts, limit: int = MAX_PROPOSALS) -> list[Proposal]:
    """The playbooks that fit the pattern, best first: by expected loops prevented, then match score, then the
    lower effort. The generic runbook is proposed only when nothing specific matched."""
    text = _text(facts)
    scored = [(playbook, score(playbook, text)) for playbook in PLAYBOOKS if playbook.keywords]
    fitting = [(playbook, value) for playbook, value in scored if value > 0]
    if not fitting:
        fitting = [(PLAYBOOK_BY_KEY["generic-runbook"], 0.1)]
    ordered = sorted(fitting, key=lambda pair: (-expected_loops(facts, pair[0].impact), -pair[1],
                                                EFFORT_ORDER[pair[0].effort.value], pair[0].key))
    return [Proposal(playbook=playbook, rank=rank, score=value,
                     expected_loops_prevented=expected_loops(facts, playbook.impact))
            for rank, (playbook, value) in enumerate(ordered[:limit], start=1)]
