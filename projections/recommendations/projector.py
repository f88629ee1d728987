"""Writes the `recommendations` read model from recommendation events (each applied once, in order)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from psycopg import AsyncConnection

from adapters.codec import AnyEvent
from domain.ids import render
from domain.recommendations.events import (
    RecommendationCreated,
    RecommendationDismissed,
    RecommendationEvent,
    RecommendationPushed,
    RecommendationReopened,
    RecommendationStatusChanged,
    RecommendationStepCompleted,
    RecommendationVerificationStarted,
    RecommendationVerified,
)

NAME = "recommendations"
VERSION = 1
CATEGORIES = frozenset({"recommendation"})
TABLES = ("recommendations",)

Conn = AsyncConnection[dict[str, Any]]
_json = msgspec.json.Encoder()

_INSERT = """
INSERT INTO recommendations (workspace_id, id, version, pattern_id, playbook, rank, title, type, impact, effort,
    overview, status, expected_loops_prevented, steps, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s::jsonb, %s, %s) ON CONFLICT DO NOTHING
"""
_STEP = """
UPDATE recommendations SET steps = (
    SELECT jsonb_agg(CASE WHEN s->>'id' = %s THEN s || jsonb_build_object('completed', %s::boolean,
                                                                          'completed_at', %s::timestamptz)
                          ELSE s END ORDER BY ord)
    FROM jsonb_array_elements(steps) WITH ORDINALITY AS t(s, ord))
"""
_TICKET = "UPDATE recommendations SET tickets = tickets || %s::jsonb WHERE workspace_id = %s AND id = %s"


async def project(conn: Conn, batch: Sequence[tuple[int, AnyEvent]]) -> None:
    for _, event in batch:
        if not isinstance(event, RecommendationEvent):
            continue
        key = (event.workspace_id, render("rec", event.originator_id))
        sets: dict[str, Any] = {}
        match event:
            case RecommendationCreated():
                steps = [{"id": s.id, "title": s.title, "description": s.description, "completed": False,
                          "completed_at": None} for s in event.steps]
                await conn.execute(_INSERT, (
                    *key, event.originator_version, event.pattern_id, event.playbook, event.rank, event.title,
                    event.fix_type, event.impact, event.effort, event.overview, event.expected_loops_prevented,
                    _json.encode(steps).decode(), event.occurred_at, event.occurred_at))
                continue
            case RecommendationStatusChanged():
                sets["status"] = event.to_status.value
            case RecommendationStepCompleted():
                await conn.execute(_STEP + " WHERE workspace_id = %s AND id = %s", (
                    event.step_id, event.completed, event.occurred_at if event.completed else None, *key))
            case RecommendationDismissed():
                sets |= {"status": "dismissed", "dismissed_reason": event.reason}
            case RecommendationVerificationStarted():
                sets |= {"verification_state": "watching", "proof_window_days": event.proof_window_days,
                         "watching_since": event.watching_since, "verified_at": None, "reopened_at": None,
                         "reopened_by_issue_id": None, "verification_explanation": event.explanation}
            case RecommendationVerified():
                sets |= {"verification_state": "verified", "verified_at": event.occurred_at}
            case RecommendationReopened():
                sets |= {"verification_state": "reopened", "reopened_at": event.occurred_at,
                         "reopened_by_issue_id": event.issue_id, "status": "in_progress"}
            case RecommendationPushed():
                ticket = {"tracker": event.tracker, "project": event.project, "connector_id": event.connector_id,
                          "key": event.ticket_key, "url": event.ticket_url, "pushed_at": event.occurred_at}
                await conn.execute(_TICKET, (_json.encode([ticket]).decode(), *key))
            case _:
                pass
        sets |= {"version": event.originator_version, "updated_at": event.occurred_at}
        columns = ", ".join(f"{column} = %s" for column in sets)
        await conn.execute(f"UPDATE recommendations SET {columns} WHERE workspace_id = %s AND id = %s",
                           (*sets.values(), *key))
