"""Watching patterns and setting notification preferences: each user's own, run by the one runner. Channel secrets
are sealed here with the master key (adapters/secret_box.py), so events and read models never hold them in clear."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast
from uuid import UUID

import msgspec

from adapters.ids import keyed_uuid
from adapters.secret_box import SecretBox
from commands.caller import Caller
from commands.errors import NotFound
from commands.runner import CommandRunner, Context, Decision, Result
from domain.ids import parse
from domain.notifications import preferences as prefs
from domain.notifications import watch as watches
from domain.notifications.events import EventChannels, PatternWatchEvent
from domain.patterns import pattern as pattern_rules
from domain.patterns.events import AnyPatternAggregateEvent, PatternEvent
from domain.predictions.events import NotificationEvent

BOX_PURPOSE = "notification-channels"
Change = str | None | msgspec.UnsetType


class PreferencesInput(msgspec.Struct, frozen=True, kw_only=True):
    """A full replacement as the API received it; a channel secret left UNSET keeps the stored one."""

    email: bool
    slack_webhook_url: Change = msgspec.UNSET
    teams_webhook_url: Change = msgspec.UNSET
    pagerduty_integration_key: Change = msgspec.UNSET
    min_severity: str
    min_risk_score: int
    digest: str
    events: dict[str, EventChannels]


def watch_stream(workspace_id: str, pattern_id: str, user_id: str) -> UUID:
    return keyed_uuid(workspace_id, "pattern-watch", pattern_id, user_id)


def preferences_stream(workspace_id: str, user_id: str) -> UUID:
    return keyed_uuid(workspace_id, "notification-preferences", user_id)


class NotificationSettingsCommands:
    """`box` is a factory: the master key is only needed (and only required in production) to seal a secret."""

    def __init__(self, runner: CommandRunner, box: Callable[[], SecretBox]) -> None:
        self._runner = runner
        self._box = box

    async def watch(self, caller: Caller, user_id: str, pattern_id: str) -> Result:
        return await self._watching(caller, user_id, pattern_id, watches.watch)

    async def unwatch(self, caller: Caller, user_id: str, pattern_id: str) -> Result:
        return await self._watching(caller, user_id, pattern_id, watches.unwatch)

    async def _watching(self, caller: Caller, user_id: str, pattern_id: str,
                        rule: Callable[..., list[PatternWatchEvent]]) -> Result:
        stream_id = watch_stream(caller.workspace_id, pattern_id, user_id)
        pattern_stream = parse("pat", pattern_id)

        async def deciding(context: Context) -> Decision:
            loaded = [] if pattern_stream is None else await context.load(pattern_stream, PatternEvent)
            pattern = pattern_rules.project_pattern(None, cast(list[AnyPatternAggregateEvent], loaded))
            if pattern is None or pattern.workspace_id != caller.workspace_id:
                raise NotFound("pattern", pattern_id)
            history = await context.load(stream_id, PatternWatchEvent)
            return Decision(stream_id, history, rule(history, stream_id, context.meta, user_id=user_id,
                                                     pattern_id=pattern_id))

        return await self._runner.run(caller, deciding)

    async def set_preferences(self, caller: Caller, user_id: str, wanted: PreferencesInput) -> Result:
        stream_id = preferences_stream(caller.workspace_id, user_id)

        async def deciding(context: Context) -> Decision:
            history = await context.load(stream_id, NotificationEvent)
            current = prefs.project_preferences(history)
            replaced = prefs.Preferences(
                email=prefs.email_enabled(wanted.email, wanted.events), min_severity=wanted.min_severity,
                min_risk_score=wanted.min_risk_score,
                digest=wanted.digest, events={**prefs.Preferences().events, **wanted.events},
                slack_webhook=self._secret(wanted.slack_webhook_url, current.slack_webhook,
                                           prefs.check_slack_webhook, f"{caller.workspace_id}:{user_id}:slack"),
                teams_webhook=self._secret(wanted.teams_webhook_url, current.teams_webhook,
                                           prefs.check_teams_webhook, f"{caller.workspace_id}:{user_id}:teams"),
                pagerduty_key=self._secret(wanted.pagerduty_integration_key, current.pagerduty_key,
                                           prefs.check_pagerduty_key, f"{caller.workspace_id}:{user_id}:pagerduty"))
            version = history[-1].originator_version + 1 if history else 1
            return Decision(stream_id, history, prefs.set_preferences(current, replaced, stream_id, version,
                                                                      context.meta, user_id=user_id))

        return await self._runner.run(caller, deciding)

    def _secret(self, given: Change, stored: prefs.Sealed | None, check: Callable[[str], None], owner: str
                ) -> prefs.Sealed | None:
        change = prefs.secret_change(given, stored, check)
        if change is msgspec.UNSET:
            return stored
        if change is None:
            return None
        return prefs.Sealed(ciphertext=self._box().seal(change, owner), hint=prefs.hint_of(change))
