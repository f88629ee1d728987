"""Writes the `predictions` read model (predictions with their resolutions and feedback, and alert rules)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.ids import render
from domain.predictions.events import (
    AlertFired,
    AlertRearmed,
    AlertRuleCreated,
    AlertRuleDeleted,
    AlertRuleUpdated,
    PredictionDismissed,
    PredictionExpired,
    PredictionFeedbackGiven,
    PredictionGenerated,
    PredictionUpdated,
)

NAME = "predictions"
VERSION = 1
CATEGORIES = frozenset({"prediction", "alert_rule"})
TABLES = ("predictions", "alert_rules")

Conn = AsyncConnection[dict[str, Any]]

_GENERATED = """
INSERT INTO predictions (workspace_id, id, version, pattern_id, window_days, probability, generated_probability,
    predicted_at, expires_at, likely_trigger, impact, status, model_version, explanation, rate_per_day, sample_size,
    last_seen_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
_UPDATED = """
UPDATE predictions SET version = %s, probability = %s, impact = %s, explanation = %s, model_version = %s,
    rate_per_day = %s, sample_size = %s, last_seen_at = %s, updated_at = %s WHERE workspace_id = %s AND id = %s
"""
_EXPIRED = """
UPDATE predictions SET version = %s, status = CASE WHEN status = 'dismissed' THEN status ELSE 'expired' END,
    resolved_at = %s, recurred = %s, recurred_at = %s, updated_at = %s WHERE workspace_id = %s AND id = %s
"""
_RULE = """
INSERT INTO alert_rules (workspace_id, id, version, name, scope, probability, window_days, channels, enabled,
    snoozed_until, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    for _, event in batch:
        workspace = event.workspace_id
        match event:
            case PredictionGenerated():
                await conn.execute(_GENERATED, (
                    workspace, render("prd", event.originator_id), event.originator_version, event.pattern_id,
                    event.window_days, event.probability, event.probability, event.predicted_at, event.expires_at,
                    event.likely_trigger, event.impact, event.model_version, event.explanation, event.rate_per_day,
                    event.sample_size, event.last_seen_at, event.occurred_at))
            case PredictionUpdated():
                await conn.execute(_UPDATED, (
                    event.originator_version, event.probability, event.impact, event.explanation,
                    event.model_version, event.rate_per_day, event.sample_size, event.last_seen_at,
                    event.occurred_at, workspace, render("prd", event.originator_id)))
            case PredictionExpired():
                await conn.execute(_EXPIRED, (
                    event.originator_version, event.occurred_at, event.recurred, event.recurred_at,
                    event.occurred_at, workspace, render("prd", event.originator_id)))
            case PredictionDismissed():
                await conn.execute(
                    "UPDATE predictions SET version = %s, status = 'dismissed', updated_at = %s"
                    " WHERE workspace_id = %s AND id = %s",
                    (event.originator_version, event.occurred_at, workspace, render("prd", event.originator_id)))
            case PredictionFeedbackGiven():
                await conn.execute(
                    "UPDATE predictions SET version = %s, feedback = %s, feedback_comment = %s, updated_at = %s"
                    " WHERE workspace_id = %s AND id = %s",
                    (event.originator_version, event.outcome, event.comment, event.occurred_at, workspace,
                     render("prd", event.originator_id)))
            case AlertRuleCreated():
                await conn.execute(_RULE, (
                    workspace, render("alr", event.originator_id), event.originator_version, event.name, event.scope,
                    event.threshold.probability, event.threshold.window_days, list(event.channels), event.enabled,
                    event.snoozed_until, event.occurred_at, event.occurred_at))
            case AlertRuleUpdated():
                await _rule_updated(conn, event)
            case AlertRuleDeleted():
                await conn.execute(
                    "UPDATE alert_rules SET version = %s, deleted = true, updated_at = %s"
                    " WHERE workspace_id = %s AND id = %s",
                    (event.originator_version, event.occurred_at, workspace, render("alr", event.originator_id)))
            case AlertFired():
                await conn.execute(
                    "UPDATE alert_rules SET version = %s, fired_count = fired_count + 1, last_fired_at = %s"
                    " WHERE workspace_id = %s AND id = %s",
                    (event.originator_version, event.occurred_at, workspace, render("alr", event.originator_id)))
            case AlertRearmed():
                await conn.execute("UPDATE alert_rules SET version = %s WHERE workspace_id = %s AND id = %s",
                                   (event.originator_version, workspace, render("alr", event.originator_id)))
            case _:
                pass


async def _rule_updated(conn: Conn, event: AlertRuleUpdated) -> None:
    sets = ["version = %s", "updated_at = %s"]
    values: list[Any] = [event.originator_version, event.occurred_at]
    for name in ("name", "scope", "enabled", "snoozed_until"):
        value = getattr(event, name)
        if value is not msgspec.UNSET:
            sets.append(f"{name} = %s")
            values.append(value)
    if event.channels is not msgspec.UNSET:
        sets.append("channels = %s")
        values.append(list(event.channels))
    if event.threshold is not msgspec.UNSET:
        sets += ["probability = %s", "window_days = %s"]
        values += [event.threshold.probability, event.threshold.window_days]
    values += [event.workspace_id, render("alr", event.originator_id)]
    await conn.execute(f"UPDATE alert_rules SET {', '.join(sets)} WHERE workspace_id = %s AND id = %s", values)
