"""The fleet: every engine with kind, config, SLOs, rollout or tuning run in flight; the
sparklines, SLO status and freshness arrive in one request for the visible rows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi import Query
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.responses import Response

from controlplane.api.deps import SessionDep
from controlplane.api.deps import get_settings
from controlplane.domain.ids import MAX_ROW_ID
from controlplane.store import fleet
from controlplane.ui.auth import UiViewer
from controlplane.ui.fleet_stats import fleet_stats
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)


def _labels(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise RequestValidationError(
                [
                    {
                        "loc": ("query", "label"),
                        "msg": f"label {pair!r} is not key=value",
                        "type": "value_error",
                        "input": None,
                    }
                ]
            )
        out[key.strip()] = value.strip()
    return out


@router.get("/fleet")
def fleet_page(
    request: Request,
    session: SessionDep,
    user: UiViewer,
    label: Annotated[list[str] | None, Query(max_length=16)] = None,
    q: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=MAX_ROW_ID)] = 0,
) -> Response:
    wanted = _labels([pair for text in (label or []) for pair in text.split()])
    limit = get_settings(request).ui.page_size
    with session.begin():
        data = fleet.fleet_page(
            session, labels=wanted, name_contains=q.strip(), offset=offset, limit=limit
        )
    return page(
        request,
        "fleet.html",
        user,
        section="fleet",
        fleet=data,
        wanted=wanted,
        label_text=" ".join(f"{k}={v}" for k, v in wanted.items()),
        q=q,
    )


@router.get("/fleet/stats.json")
def fleet_stats_json(
    request: Request,
    session: SessionDep,
    user: UiViewer,
    ids: Annotated[str, Query(max_length=60_000, pattern=r"^[0-9]+(,[0-9]+)*$")],
) -> JSONResponse:
    limit = get_settings(request).ui.page_size
    wanted = [int(x) for x in ids.split(",")[:limit] if 0 < int(x) <= MAX_ROW_ID]
    with session.begin():
        stats = fleet_stats(session, wanted)
    body = {
        str(engine_id): {
            "qps": s.qps,
            "p99_ms": s.p99_ms,
            "slo_status": s.slo_status,
            "slo_detail": s.slo_detail,
            "health": s.health,
            "last_sample_age_s": s.last_sample_age_s,
        }
        for engine_id, s in stats.items()
    }
    return JSONResponse(body)
