"""Provider payloads in their real public shapes (trimmed to the fields that matter), as the providers document
them: Jira Cloud REST v3 issue / webhook, PagerDuty REST v2 incident / v3 webhook, GitHub issue / `issues` webhook,
Sentry issue / issue webhook, Datadog webhook monitor notification."""

from __future__ import annotations

from typing import Any

JIRA_WEBHOOK: dict[str, Any] = {
    "timestamp": 1764979200000,
    "webhookEvent": "jira:issue_created",
    "issue_event_type_name": "issue_created",
    "issue": {
        "id": "10002",
        "self": "https://acme.atlassian.net/rest/api/3/issue/10002",
        "key": "OPS-17",
        "fields": {
            "summary": "Payment gateway timeouts in eu-west-1",
            "description": {"type": "doc", "version": 1, "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "p99 above 5 s since 09:00."}]},
                {"type": "paragraph", "content": [{"type": "text", "text": "Retries "},
                                                  {"type": "text", "text": "exhaust the pool."}]}]},
            "priority": {"self": "https://acme.atlassian.net/rest/api/3/priority/2", "name": "High", "id": "2"},
            "status": {"name": "To Do", "statusCategory": {"key": "new"}},
            "issuetype": {"name": "Bug", "subtask": False},
            "project": {"id": "10000", "key": "OPS", "name": "Operations"},
            "components": [{"id": "10100", "name": "payments"}],
            "labels": ["gateway", "timeout"],
            "created": "2026-12-01T09:12:44.000+0000",
            "updated": "2026-12-01T10:01:02.000+0100",
        },
    },
}

PAGERDUTY_INCIDENT: dict[str, Any] = {
    "incident": {
        "id": "PT4KHLK",
        "type": "incident",
        "summary": "[#1234] The server is on fire.",
        "self": "https://api.pagerduty.com/incidents/PT4KHLK",
        "html_url": "https://subdomain.pagerduty.com/incidents/PT4KHLK",
        "incident_number": 1234,
        "title": "The server is on fire.",
        "created_at": "2015-10-06T21:30:42Z",
        "updated_at": "2015-10-06T21:40:23Z",
        "status": "triggered",
        "incident_key": "baf7cf21b1da41b4b0221008339ff357",
        "service": {"id": "PIJ90N7", "type": "service_reference", "summary": "My Mail Service"},
        "priority": {"id": "P53ZZH5", "type": "priority_reference", "summary": "P2"},
        "urgency": "high",
        "escalation_policy": {"id": "PT20YPA", "type": "escalation_policy_reference",
                              "summary": "Another Escalation Policy"},
        "teams": [{"id": "PQ9K7I8", "type": "team_reference", "summary": "Engineering"}],
    },
}

PAGERDUTY_WEBHOOK: dict[str, Any] = {
    "event": {
        "id": "5ac64822-4adc-4fda-ade0-410becf0de4f",
        "event_type": "incident.triggered",
        "resource_type": "incident",
        "occurred_at": "2020-10-02T18:45:22.169Z",
        "data": {
            "id": "PGR0VU2",
            "type": "incident",
            "self": "https://api.pagerduty.com/incidents/PGR0VU2",
            "html_url": "https://acme.pagerduty.com/incidents/PGR0VU2",
            "number": 2,
            "status": "triggered",
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2020-04-09T15:16:27Z",
            "title": "A little bump in the road",
            "service": {"id": "PF9KMXH", "summary": "API Service", "type": "service_reference"},
            "urgency": "low",
        },
    },
}

GITHUB_WEBHOOK: dict[str, Any] = {
    "action": "opened",
    "issue": {
        "url": "https://api.github.com/repos/octocat/Hello-World/issues/1347",
        "html_url": "https://github.com/octocat/Hello-World/issues/1347",
        "id": 1,
        "node_id": "MDU6SXNzdWUx",
        "number": 1347,
        "title": "Found a bug",
        "user": {"login": "octocat", "id": 1},
        "labels": [{"id": 208045946, "name": "bug"}, {"id": 208045947, "name": "priority: p1"}],
        "state": "open",
        "body": "I'm having a problem with this.",
        "created_at": "2011-04-22T13:33:48Z",
        "updated_at": "2011-04-22T13:33:48Z",
    },
    "repository": {"id": 1296269, "name": "Hello-World", "full_name": "octocat/Hello-World"},
}

SENTRY_ISSUE: dict[str, Any] = {
    "id": "1",
    "shortId": "PUMP-STATION-1",
    "title": "This is an example Python exception",
    "culprit": "raven.scripts.runner in main",
    "permalink": "https://sentry.io/the-interstellar-jurisdiction/pump-station/issues/1/",
    "level": "error",
    "status": "unresolved",
    "platform": "python",
    "project": {"id": "2", "name": "Pump Station", "slug": "pump-station"},
    "type": "default",
    "metadata": {"title": "This is an example Python exception", "type": "ValueError", "value": "bad pump"},
    "count": "150",
    "userCount": 0,
    "firstSeen": "2018-11-06T21:19:55Z",
    "lastSeen": "2018-11-06T21:19:55Z",
}

DATADOG_MONITOR: dict[str, Any] = {
    "id": "7239476934856",
    "last_updated": "1764979500000",
    "event_type": "query_alert_monitor",
    "title": "[Triggered] High error rate on checkout",
    "date": "1764979200000",
    "org": {"id": "12345", "name": "Acme"},
    "body": "Error rate above 5% for 10 minutes @pagerduty",
    "alert_id": "1234567",
    "alert_cycle_key": "6991024734765427210",
    "alert_priority": "P1",
    "alert_transition": "Triggered",
    "alert_type": "error",
    "alert_status": "Alert",
    "hostname": "checkout-7f9",
    "link": "https://app.datadoghq.com/monitors/1234567",
    "tags": "env:prod,service:checkout,team:payments",
}
