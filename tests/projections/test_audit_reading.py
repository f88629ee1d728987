"""The audit log's reading of events (action, category, target, metadata) and its hash chain: pure, no services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import ClassVar

import msgspec

from domain.events import DomainEvent
from domain.identity.events import MemberAdded, WorkspaceProvisioned
from domain.identity.roles import Role
from domain.ids import OrganizationId, UserId, render
from domain.issues.events import IssueClosed, Status
from projections.audit.actions import derive, describe, is_secret
from projections.audit.chain import GENESIS, Entry, canonical_json, entry_hash, verify
from projections.audit.projector import CATEGORIES, Head, prepare
from tests.builders import ALICE, ISSUE, T1, WS, opened

USER = UserId("usr_01KV1PX3NR96XJRGD48NNHH499")


class ServiceAccountEvent(DomainEvent, frozen=True, kw_only=True):
    category: ClassVar[str] = "service_account"


class ServiceAccountCreated(ServiceAccountEvent, frozen=True, kw_only=True):
    name: str
    token_hash: str
    client_secret: str
    settings: dict[str, object]


def _envelope(stream: uuid.UUID = ISSUE, version: int = 1) -> dict[str, object]:
    return {"originator_id": stream, "originator_version": version, "occurred_at": T1, "workspace_id": WS,
            "actor": ALICE, "client_ip": "203.0.113.7"}


def test_an_opened_issue_is_an_issue_created_entry_targeting_the_issue() -> None:
    described = describe(opened())

    assert (described.action, described.category) == ("issue.created", "create")
    assert (described.target_type, described.target_id) == ("issue", render("iss", ISSUE))
    assert described.metadata["title"] == "Payment gateway timeout"


def test_a_closed_issue_is_an_update() -> None:
    described = describe(IssueClosed(**_envelope(version=2), from_status=Status.OPEN))  # type: ignore[arg-type]

    assert (described.action, described.category, described.metadata) == ("issue.closed", "update",
                                                                           {"from_status": "open"})


def test_a_member_event_targets_the_member_user_rather_than_the_workspace_stream() -> None:
    event = MemberAdded(**_envelope(), user_id=USER, role=Role.ANALYST)  # type: ignore[arg-type]

    described = describe(event)

    assert (described.action, described.category, described.target_type, described.target_id) == (
        "member.added", "create", "member", USER)


def test_an_event_type_without_an_override_gets_a_derived_action_and_loses_its_secrets() -> None:
    event = ServiceAccountCreated(**_envelope(), name="ci", token_hash="ab" * 32,  # type: ignore[arg-type]
                                  client_secret="s3cret", settings={"api_token": "x", "scope_count": 2})

    described = describe(event)

    assert (described.action, described.category, described.target_type) == (
        "service_account.created", "create", "service_account")
    assert described.target_id == render("sa", ISSUE)  # the category's STREAM_PREFIX (sa_) names the stream
    assert described.metadata == {"name": "ci", "settings": {"scope_count": 2}}


def test_derived_categories_follow_the_final_verb() -> None:
    cases = {("ApiTokenRevoked", "api_token"): ("api_token.revoked", "revoke"),
             ("InvitationResent", "invitation"): ("invitation.resent", "invite"),
             ("WorkspaceDataExported", "workspace"): ("workspace.data_exported", "export"),
             ("SessionStarted", "session"): ("session.started", "login"),
             ("TeamDeleted", "team"): ("team.deleted", "delete"),
             ("ConnectorEdited", "connector"): ("connector.edited", "update"),
             ("TotpEnrolled", "mfa"): ("mfa.totp_enrolled", "create"),
             ("PatternDetected", "pattern"): ("pattern.detected", "other"),
             ("ConnectorAddedV2", "connector"): ("connector.added", "create")}

    assert {key: derive(*key) for key in cases} == cases


def test_secret_looking_names_are_recognised_but_ids_of_tokens_are_not() -> None:
    assert all(map(is_secret, ["token_hash", "secret", "totp_secret_ciphertext", "refresh_token", "password"]))
    assert not any(map(is_secret, ["token_id", "name", "role", "scopes"]))


def test_the_projection_covers_every_category_the_codec_knows() -> None:
    assert {"issue", "workspace", "user"} <= CATEGORIES


def _entry(seq: int = 1, metadata: dict[str, object] | None = None) -> Entry:
    return Entry(workspace_id=WS, id="aud_x", seq=seq, position=10 + seq, occurred_at=T1,
                 actor={"kind": "user", "id": ALICE.id}, action="issue.created", category="create",
                 target_type="issue", target_id="iss_x", metadata=metadata or {}, ip="203.0.113.7")


def test_canonical_json_reads_the_same_before_and_after_a_jsonb_round_trip() -> None:
    fresh = {"b": 1e20, "a": [0.1, -0.0, 5.0, True, None], "c": "ü\n"}
    from_jsonb = {"a": [Decimal("0.1"), 0, 5, True, None], "c": "ü\n", "b": 100000000000000000000}

    assert canonical_json(fresh) == canonical_json(from_jsonb)
    assert canonical_json(fresh) == '{"a":[0.1,0,5,true,null],"b":100000000000000000000,"c":"ü\\n"}'


def test_a_timestamp_hashes_the_same_in_any_time_zone() -> None:
    aware = datetime(2026, 1, 15, 11, 0, tzinfo=datetime.now().astimezone().tzinfo)

    assert canonical_json(aware.astimezone(UTC)) == canonical_json(aware)


def test_the_chain_verifies_and_names_the_first_broken_seq() -> None:
    first = _entry(1)
    second = _entry(2)
    h1 = entry_hash(GENESIS, first)
    h2 = entry_hash(h1, second)
    tampered = msgspec.structs.replace(second, action="issue.deleted")

    assert verify([(first, GENESIS, h1), (second, h1, h2)]).ok
    assert verify([(first, GENESIS, h1), (tampered, h1, h2)]).broken_at == 2
    assert verify([(second, h1, h2)]).broken_at == 1  # the first entry is gone


def test_prepare_chains_each_workspace_on_from_its_head() -> None:
    head = Head(seq=7, hash="f" * 64)
    other = "ws_01KV1PX3NQ3B497SHK7JTNT999"
    batch = [(100, opened()), (101, opened(issue_id=uuid.uuid4())),
             (102, WorkspaceProvisioned(**{**_envelope(), "workspace_id": other},  # type: ignore[arg-type]
                                        organization_id=OrganizationId("org_x"), organization_slug="o",
                                        organization_name="O", slug="s", name="S", owner_user_id=USER))]

    prepared = prepare({WS: head}, batch)

    assert prepared.views[WS].seq == 9
    assert prepared.views[other].seq == 1
    columns = prepared.statements[0][1]
    assert columns[2] == [8, 9, 1]  # seq
    assert columns[12] == ["f" * 64, columns[13][0], GENESIS]  # prev_hash links to the hash before
