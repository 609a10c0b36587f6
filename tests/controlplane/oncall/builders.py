"""Small builders for on-call tests: people with contact methods, a schedule, a policy and
a route, written through the store functions the API uses."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from controlplane.domain import Role
from controlplane.schemas.alerts import AlertmanagerWebhook
from controlplane.schemas.oncall import ContactMethodCreate
from controlplane.schemas.oncall import NotificationRuleCreate
from controlplane.schemas.oncall import PolicyCreate
from controlplane.schemas.oncall import RouteCreate
from controlplane.schemas.oncall import ScheduleCreate
from controlplane.store import alerts
from controlplane.store import oncall
from controlplane.store import users

PD_KEY = "a" * 32


def person(session: Session, name: str, *, pagerduty: bool = False) -> None:
    users.create_user(session, name=name, role=Role.operator, actor="t")
    oncall.add_contact_method(
        session,
        user=name,
        body=ContactMethodCreate(name="mail", kind="email", address=f"{name}@example.com"),
        actor="t",
    )
    if pagerduty:
        oncall.add_contact_method(
            session,
            user=name,
            body=ContactMethodCreate.model_validate(
                {"name": "pd", "kind": "pagerduty", "routing_key": PD_KEY}
            ),
            actor="t",
        )


def rule(session: Session, user: str, method: str, delay_s: int) -> None:
    oncall.add_notification_rule(
        session,
        user=user,
        body=NotificationRuleCreate(contact_method=method, delay_s=delay_s),
        actor="t",
    )


def setup_paging(
    session: Session,
    *,
    primary: str = "alice",
    secondary: str = "bob",
    delay_s: int = 300,
    repeat: int = 0,
    group_by: list[str] | None = None,
) -> None:
    """``primary`` on call around the clock, escalating to ``secondary`` after ``delay_s``."""
    oncall.create_schedule(
        session,
        ScheduleCreate.model_validate(
            {
                "name": "primary",
                "timezone": "Europe/Berlin",
                "layers": [
                    {
                        "name": "week",
                        "kind": "weekly",
                        "start": "2026-01-05T09:00:00",
                        "participants": [primary],
                    }
                ],
            }
        ),
        actor="t",
    )
    oncall.create_policy(
        session,
        PolicyCreate.model_validate(
            {
                "name": "default",
                "repeat": repeat,
                "steps": [
                    {"targets": [{"kind": "schedule", "ref": "primary"}], "delay_s": delay_s},
                    {"targets": [{"kind": "user", "ref": secondary}], "delay_s": delay_s},
                ],
            }
        ),
        actor="t",
    )
    oncall.create_route(
        session,
        RouteCreate(name="all", policy="default", group_by=group_by or []),
        actor="t",
    )


def webhook_alert(
    fingerprint: str,
    *,
    name: str = "EngineHighP99Latency",
    engine: str = "llm-a",
    status: str = "firing",
    starts: str = "2026-12-01T12:00:00Z",
    ends: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "engine": engine, "severity": "critical", **labels},
        "annotations": {"summary": "p99 latency above SLO", "slo": "p99 < 500 ms"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }


def message(*alert_list: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": alert_list[0]["status"],
        "receiver": "controlplane",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alert_list),
    }


def deliver(session: Session, *alert_list: dict[str, Any], now: datetime) -> None:
    with session.begin():
        alerts.ingest_webhook(
            session,
            AlertmanagerWebhook.model_validate(message(*alert_list)),
            actor="user:am",
            now=now,
        )
