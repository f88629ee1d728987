"""What an event means in the audit log: action, category, target and metadata. Pure: no I/O, no clock.

Well-known events have an explicit entry in `OVERRIDES`; any other event type (including ones added
after this module was written) gets a derived action `<category>.<rest_of_the_type_name>` in snake case,
whose audit category follows from the type name's final past-tense verb.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from adapters.codec import STREAM_PREFIX
from domain.events import DomainEvent
from domain.ids import render

CATEGORIES = ("create", "update", "delete", "invite", "revoke", "export", "login", "other")

_VERB_CATEGORY: dict[str, str] = {
    **dict.fromkeys(("created", "added", "opened", "registered", "provisioned", "enrolled"), "create"),
    **dict.fromkeys(("updated", "changed", "edited", "linked", "unlinked", "assigned", "renamed", "rotated",
                     "activated", "reactivated", "suspended", "enabled", "disabled", "completed", "accepted"),
                    "update"),
    **dict.fromkeys(("deleted", "removed", "offboarded"), "delete"),
    **dict.fromkeys(("invited", "sent", "resent"), "invite"),
    **dict.fromkeys(("revoked",), "revoke"),
    **dict.fromkeys(("exported",), "export"),
}
_SECRET_WORDS = ("hash", "secret", "ciphertext", "password", "private_key")
_ENVELOPE = frozenset(DomainEvent.__struct_fields__)
_VERSION_SUFFIX = re.compile(r"(?<=[a-z])V[0-9]+$")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


class Described(msgspec.Struct, frozen=True, kw_only=True):
    """The audit-log reading of one event."""

    action: str
    category: str
    target_type: str
    target_id: str
    metadata: dict[str, Any]


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    """An explicit reading of one event type; `target_field` names a data field holding the target's id."""

    action: str
    category: str
    target_type: str
    target_field: str | None = None
    extra: dict[str, str] = msgspec.field(default_factory=dict)


def _rule(action: str, category: str, target_type: str, target_field: str | None = None,
          **extra: str) -> Rule:
    return Rule(action=action, category=category, target_type=target_type, target_field=target_field,
                extra=dict(extra))


_SETTINGS = "workspace.settings.updated"

# Event types named in issue #3's contract are listed even before they exist: an entry for a type
# nobody emits is harmless, and the audit log reads them the documented way the moment they land.
OVERRIDES: Mapping[str, Rule] = {
    "IssueOpened": _rule("issue.created", "create", "issue"),
    "IssueDetailsEdited": _rule("issue.updated", "update", "issue"),
    "IssueAssigned": _rule("issue.assigned", "update", "issue"),
    "IssueStatusChanged": _rule("issue.status_changed", "update", "issue"),
    "IssueClosed": _rule("issue.closed", "update", "issue"),
    "IssueReopened": _rule("issue.reopened", "update", "issue"),
    "IssueCommented": _rule("issue.commented", "create", "issue"),
    "IssuePatternLinked": _rule("issue.pattern_linked", "update", "issue"),
    "IssuePatternUnlinked": _rule("issue.pattern_unlinked", "update", "issue"),
    "WorkspaceProvisioned": _rule("workspace.created", "create", "workspace"),
    "WorkspaceOffboarded": _rule("workspace.offboarded", "delete", "workspace"),
    "MemberAdded": _rule("member.added", "create", "member", "user_id"),
    "MemberRoleChanged": _rule("member.role_changed", "update", "member", "user_id"),
    "MemberSuspended": _rule("member.suspended", "update", "member", "user_id"),
    "MemberReactivated": _rule("member.reactivated", "update", "member", "user_id"),
    "MemberRemoved": _rule("member.removed", "delete", "member", "user_id"),
    "UserRegistered": _rule("user.registered", "create", "user"),
    "UserProfileUpdated": _rule("user.profile_updated", "update", "user"),
    "UserExternalIdentityLinked": _rule("user.external_identity_linked", "update", "user"),
    "InvitationSent": _rule("member.invited", "invite", "invitation"),
    "InvitationResent": _rule("member.invitation_resent", "invite", "invitation"),
    "InvitationRevoked": _rule("member.invitation_revoked", "revoke", "invitation"),
    "InvitationAccepted": _rule("member.invitation_accepted", "update", "invitation"),
    "ApiTokenCreated": _rule("api_token.created", "create", "api_token"),
    "ApiTokenRotated": _rule("api_token.rotated", "update", "api_token"),
    "ApiTokenRevoked": _rule("api_token.revoked", "revoke", "api_token"),
    "SessionStarted": _rule("auth.login", "login", "session"),
    "SessionRefreshed": _rule("auth.session_refreshed", "login", "session"),
    "SessionRevoked": _rule("auth.session_revoked", "revoke", "session"),
    "TotpEnrolled": _rule("auth.mfa_enrolled", "create", "user", "user_id"),
    "TotpActivated": _rule("auth.mfa_activated", "update", "user", "user_id"),
    "TotpRemoved": _rule("auth.mfa_removed", "delete", "user", "user_id"),
    "WorkspaceProfileUpdated": _rule(_SETTINGS, "update", "workspace", section="profile"),
    "AiSettingsUpdated": _rule(_SETTINGS, "update", "workspace", section="ai"),
    "RetentionSettingsUpdated": _rule(_SETTINGS, "update", "workspace", section="retention"),
    "MfaRequirementChanged": _rule(_SETTINGS, "update", "workspace", section="mfa"),
    "OnboardingStepCompleted": _rule("workspace.onboarding_step_completed", "update", "workspace"),
    "WorkspaceSlugClaimed": _rule("workspace.slug_claimed", "update", "workspace"),
    "RecommendationPushed": _rule("recommendation.pushed", "update", "recommendation"),
    "PatternWatched": _rule("pattern.watched", "update", "pattern", "pattern_id"),
    "PatternUnwatched": _rule("pattern.unwatched", "update", "pattern", "pattern_id"),
    "NotificationPreferencesSet": _rule("user.notification_preferences_updated", "update", "user", "user_id"),
}
# Targets that are the workspace itself, whatever stream the event lives in.
_WORKSPACE_TARGETS = frozenset({"workspace"})


def snake(name: str) -> str:
    """`ServiceAccountCreated` → `service_account_created`; `MFARequired` → `mfa_required`."""
    return _CAMEL.sub("_", name).lower()


def base_name(type_name: str) -> str:
    """A breaking change gets a new type (`IssueOpenedV2`, see the style guide): it means what `IssueOpened` did."""
    return _VERSION_SUFFIX.sub("", type_name)


def derive(type_name: str, category: str) -> tuple[str, str]:
    """(action, audit category) for an event type without an override.

    The action is the event category, then the rest of the type name (the category's own words dropped
    when the name starts with them): `ServiceAccountCreated` in `service_account` → `service_account.created`.
    """
    words = snake(base_name(type_name))
    rest = words[len(category) + 1:] if words.startswith(category + "_") else words
    verb = words.rsplit("_", 1)[-1]
    if words.startswith("session") or "login" in words or "logged_in" in words:
        audit_category = "login"
    else:
        audit_category = _VERB_CATEGORY.get(verb, "other")
    return f"{category}.{rest}", audit_category


def is_secret(name: str) -> bool:
    """Field names that may carry credentials (hashes included): never copied into the audit log."""
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_WORDS):
        return True
    return "token" in lowered and not lowered.endswith(("_id", "_ids", "_name", "_kind"))


def scrub(value: Any) -> Any:
    """Drop secret-looking keys at every depth and make strings storable in jsonb (no NUL)."""
    if isinstance(value, dict):
        return {scrub(key): scrub(item) for key, item in value.items() if not is_secret(str(key))}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    return value


def event_data(event: DomainEvent) -> dict[str, Any]:
    """The event's own fields (no envelope, no unset ones) as JSON-ready builtins."""
    data = {name: getattr(event, name) for name in event.__struct_fields__
            if name not in _ENVELOPE and getattr(event, name) is not msgspec.UNSET}
    builtins: dict[str, Any] = msgspec.to_builtins(data)
    return builtins


def stream_ref(event: DomainEvent) -> str:
    """The event's stream as a public id (`iss_…`); the bare UUID for a category without a prefix."""
    prefix = STREAM_PREFIX.get(type(event).category)
    return render(prefix, event.originator_id) if prefix else str(event.originator_id)


def describe(event: DomainEvent) -> Described:
    """The audit-log reading of `event`: explicit for well-known types, derived for any other."""
    name, category = base_name(type(event).__name__), type(event).category
    data = event_data(event)
    metadata: dict[str, Any] = scrub(data)
    rule = OVERRIDES.get(name)
    if rule is None:
        action, audit_category = derive(name, category)
        return Described(action=action, category=audit_category, target_type=category,
                         target_id=stream_ref(event), metadata=metadata)
    target_id = stream_ref(event)
    if rule.target_type in _WORKSPACE_TARGETS and category != "workspace":
        target_id = event.workspace_id
    if rule.target_field is not None and isinstance(data.get(rule.target_field), str):
        target_id = data[rule.target_field]
    return Described(action=rule.action, category=rule.category, target_type=rule.target_type,
                     target_id=target_id, metadata={**metadata, **rule.extra})
