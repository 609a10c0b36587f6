"""One engine: live charts from the store's series (the data of ``/api/v1/series``), its
config history, the SLO editor, and a guarded change with its rollout followed live."""

from __future__ import annotations

import time
from typing import Annotated
from typing import Literal
from urllib.parse import quote

from fastapi import APIRouter
from fastapi import Path
from fastapi import Query
from fastapi import Request
from fastapi.responses import RedirectResponse
from fastapi.responses import Response

from controlplane.api.deps import SessionDep
from controlplane.api.deps import get_settings
from controlplane.api.params import EngineRef
from controlplane.api.routes import rollouts as rollouts_api
from controlplane.api.routes import series as series_api
from controlplane.api.routes import slos as slos_api
from controlplane.domain import DomainError
from controlplane.domain import EngineTarget
from controlplane.schemas.engines import EngineConfigRead
from controlplane.schemas.engines import EngineRead
from controlplane.schemas.rollouts import ApplyRequest
from controlplane.schemas.rollouts import RolloutRead
from controlplane.schemas.slos import SloCreate
from controlplane.schemas.slos import SloRead
from controlplane.schemas.tuning import TuningRunRead
from controlplane.store import configs
from controlplane.store import engines
from controlplane.store import rollouts
from controlplane.store import samples
from controlplane.store import slos
from controlplane.store import tuning
from controlplane.ui.auth import UiOperator
from controlplane.ui.auth import UiUser
from controlplane.ui.auth import UiViewer
from controlplane.ui.auth import actor
from controlplane.ui.forms import FormErrors
from controlplane.ui.forms import act
from controlplane.ui.forms import parse
from controlplane.ui.forms import typed
from controlplane.ui.render import page

router = APIRouter(prefix="/ui", include_in_schema=False)

RANGES = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400}
RangeName = Literal["15m", "1h", "6h", "24h", "7d"]
# (title, metric, unit, scale, query): the same parameters /api/v1/series takes.
CHARTS: tuple[tuple[str, str, str, float, dict[str, str]], ...] = (
    ("QPS (succeeded)", "requests_succeeded_total", "req/s", 1.0, {"rate": "true"}),
    ("Errors", "requests_failed_total", "req/s", 1.0, {"rate": "true"}),
    ("Latency p50", "request_latency_seconds", "ms", 1000.0, {"quantile": "0.5"}),
    ("Latency p99", "request_latency_seconds", "ms", 1000.0, {"quantile": "0.99"}),
    ("TTFT p99", "time_to_first_token_seconds", "ms", 1000.0, {"quantile": "0.99"}),
    ("Tokens/s (generated)", "generation_tokens_total", "tok/s", 1.0, {"rate": "true"}),
    ("Queue (waiting)", "requests_waiting", "requests", 1.0, {}),
    ("Running", "requests_running", "requests", 1.0, {}),
    ("KV cache", "kv_cache_usage_ratio", "ratio", 1.0, {}),
)
HOST_RSS = "host_engine_process_resident_memory_bytes"
SloName = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.]+$")]


def _step(range_s: int) -> int:
    """About 360 points a chart, never under the 5 s a scrape takes."""
    return max(5, range_s // 360)


def _context(session: SessionDep, ref: str) -> dict[str, object]:
    row = engines.get_engine(session, ref)
    history = [
        EngineConfigRead.model_validate(c)
        for c in configs.config_history(session, row.id, limit=50)
    ]
    lkg_row = configs.last_known_good(session, row.id)
    lkg = None if lkg_row is None else EngineConfigRead.model_validate(lkg_row)
    recorded = lkg or (history[0] if history else None)
    active = rollouts.active_rollout(session, row.id)
    return {
        "engine": EngineRead.from_row(row),
        "history": history,
        "lkg": lkg,
        "recorded": None if recorded is None else dict(recorded.config),
        "slos": [SloRead.from_row(r) for r in slos.list_slos(session, row.id)],
        "active": None if active is None else RolloutRead.model_validate(active),
        "recent": [
            RolloutRead.model_validate(r)
            for r in rollouts.list_rollouts(session, engine_id=row.id, limit=10)
        ],
        "runs": [
            TuningRunRead.model_validate(t)
            for t in tuning.list_runs(session, engine_id=row.id, limit=5)
        ],
    }


def _live_config(request: Request, target: EngineTarget) -> dict[str, object]:
    """Before any version is recorded, the form starts from what the engine says it runs."""
    adapter = request.app.state.adapter_factory(target)
    try:
        return dict(adapter.current_config())
    except DomainError:
        return {}
    finally:
        adapter.close()


def _render(
    request: Request,
    session: SessionDep,
    user: UiUser,
    ref: str,
    *,
    range_name: str = "1h",
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    notice: str = "",
    status_code: int = 200,
) -> Response:
    with session.begin():
        ctx = _context(session, ref)
        row = engines.get_engine(session, ref)
        target = engines.engine_target(row)
        hosts = samples.sources_labelled(session, metric=HOST_RSS, key="engine", value=row.name)
    recorded = ctx["recorded"]
    knobs = recorded if isinstance(recorded, dict) else _live_config(request, target)
    range_s = RANGES[range_name]
    to = int(time.time())
    step = _step(range_s)
    engine = ctx["engine"]
    assert isinstance(engine, EngineRead)
    charts = []
    for title, metric, unit, scale, extra in CHARTS:
        query = "&".join(f"{k}={v}" for k, v in extra.items())
        url = (
            f"/ui/engines/{engine.id}/series.json?metric={metric}&from={to - range_s}"
            f"&to={to}&step={step}" + (f"&{query}" if query else "")
        )
        charts.append({"title": title, "url": url, "unit": unit, "scale": scale})
    for host in hosts:
        url = (
            f"/ui/engines/{engine.id}/host-series.json?host={quote(host)}&from={to - range_s}"
            f"&to={to}&step={step}"
        )
        charts.append(
            {"title": f"Resident memory ({host})", "url": url, "unit": "MiB", "scale": 1 / 2**20}
        )
    return page(
        request,
        "engine.html",
        user,
        status_code=status_code,
        section="fleet",
        charts=charts,
        ranges=list(RANGES),
        range_name=range_name,
        errors=errors or {},
        form=form or {},
        notice=notice,
        default_bake_s=get_settings(request).guard.bake_s,
        knobs=knobs,
        **ctx,
    )


@router.get("/engines/{engine}")
def engine_page(
    request: Request,
    engine: EngineRef,
    session: SessionDep,
    user: UiViewer,
    range: Annotated[RangeName, Query()] = "1h",
) -> Response:
    return _render(request, session, user, engine, range_name=range)


@router.get("/engines/{engine}/series.json")
def engine_series(
    engine: EngineRef,
    session: SessionDep,
    user: UiViewer,
    metric: Annotated[str, Query(min_length=1, max_length=200)],
    start: Annotated[float, Query(alias="from", ge=0)],
    end: Annotated[float, Query(alias="to", ge=0)],
    step: Annotated[float, Query(gt=0, le=86400)] = 60.0,
    quantile: Annotated[float | None, Query(ge=0, le=1)] = None,
    rate: bool = False,
) -> Response:
    """The engine's series exactly as ``GET /api/v1/series`` answers it (same function)."""
    with session.begin():
        name = engines.get_engine(session, engine).name
    result = series_api.get_series(
        session=session,
        who=user.principal,
        engine=name,
        metric=metric,
        labels=None,
        start=start,
        end=end,
        step=step,
        window=None,
        quantile=quantile,
        rate=rate,
        agg="last",
    )
    return Response(result.model_dump_json(), media_type="application/json")


@router.get("/engines/{engine}/host-series.json")
def engine_host_series(
    engine: EngineRef,
    session: SessionDep,
    user: UiViewer,
    host: Annotated[str, Query(min_length=1, max_length=200)],
    start: Annotated[float, Query(alias="from", ge=0)],
    end: Annotated[float, Query(alias="to", ge=0)],
    step: Annotated[float, Query(gt=0, le=86400)] = 60.0,
) -> Response:
    """The engine's process as its host reports it (source ``host:NAME``, label
    ``engine=<name>``), through the same function as ``GET /api/v1/series``."""
    with session.begin():
        name = engines.get_engine(session, engine).name
    result = series_api.get_series(
        session=session,
        who=user.principal,
        engine=host,
        metric=HOST_RSS,
        labels=[f"engine={name}"],
        start=start,
        end=end,
        step=step,
        window=None,
        quantile=None,
        rate=False,
        agg="last",
    )
    return Response(result.model_dump_json(), media_type="application/json")


@router.get("/engines/{engine}/active")
def active_rollout_fragment(
    request: Request, engine: EngineRef, session: SessionDep, user: UiViewer
) -> Response:
    """The rollout in flight (or the last one), polled by htmx while the page is open."""
    with session.begin():
        row = engines.get_engine(session, engine)
        active = rollouts.active_rollout(session, row.id)
        recent = rollouts.list_rollouts(session, engine_id=row.id, limit=1)
        shown = None if active is None else RolloutRead.model_validate(active)
        last = RolloutRead.model_validate(recent[0]) if recent else None
    return page(request, "fragments/active_rollout.html", user, active=shown, last=last)


@router.post("/engines/{engine}/apply")
async def apply_change(
    request: Request, engine: EngineRef, session: SessionDep, user: UiOperator
) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    current = {k.removeprefix("knob."): v for k, v in form.items() if k.startswith("knob.")}
    was = {k.removeprefix("was."): v for k, v in form.items() if k.startswith("was.")}
    changes = {
        k: typed(v) for k, v in current.items() if v.strip() and v.strip() != was.get(k, "")
    }
    try:
        body = parse(
            ApplyRequest,
            {
                "changes": changes,
                "bake_s": form.get("bake_s") or None,
                "dry_run": form.get("dry_run") == "on",
            },
        )
        settings = get_settings(request)
        plan = act(
            lambda: rollouts_api.start_change(
                request,
                session,
                engine=engine,
                changes=dict(body.changes),
                reason=body.reason,
                who=actor(user),
                bake_s=body.bake_s or settings.guard.bake_s,
                dry_run=body.dry_run,
            ),
            default_field="changes",
        )
    except FormErrors as exc:
        return _render(
            request, session, user, engine, errors=exc.errors, form=form, status_code=422
        )
    if plan.rollout_id is None:
        notice = f"Dry run: would change {plan.changes} and bake {plan.bake_s:g} s; nothing done."
        return _render(request, session, user, engine, form=form, notice=notice)
    return RedirectResponse(f"/ui/rollouts/{plan.rollout_id}", status_code=303)


@router.post("/engines/{engine}/slos")
async def set_slo(
    request: Request, engine: EngineRef, session: SessionDep, user: UiOperator
) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    try:
        data = {"spec": form.get("spec", "")}
        if form.get("window_s", "").strip():
            data["window_s"] = form["window_s"]
        body = parse(SloCreate, data)
        act(
            lambda: slos_api.set_slo(
                engine=engine, body=body, session=session, who=user.principal
            ),
            default_field="spec",
        )
    except FormErrors as exc:
        errors = {("spec" if k in {"slo", "_form"} else k): v for k, v in exc.errors.items()}
        return _render(request, session, user, engine, errors=errors, form=form, status_code=422)
    return RedirectResponse(f"/ui/engines/{engine}#slos", status_code=303)


@router.post("/engines/{engine}/slos/{name}/delete")
def remove_slo(
    request: Request, engine: EngineRef, name: SloName, session: SessionDep, user: UiOperator
) -> Response:
    try:
        act(
            lambda: slos_api.remove_slo(
                engine=engine, name=name, session=session, who=user.principal
            )
        )
    except FormErrors as exc:
        return _render(request, session, user, engine, errors=exc.errors, status_code=422)
    return RedirectResponse(f"/ui/engines/{engine}#slos", status_code=303)
