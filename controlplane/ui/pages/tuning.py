"""Tuning: runs and schedules; one run with its trials, the report's plots (Plotly, loaded on
this page only), best vs default with confidence intervals, stop / resume, the HTML report;
a form that starts a run through the API's own start function."""

from __future__ import annotations

import json
import logging
from typing import Any

import optuna
import plotly.io as pio  # type: ignore[import-untyped]
from fastapi import APIRouter
from fastapi import Request
from fastapi.responses import FileResponse
from fastapi.responses import JSONResponse
from fastapi.responses import RedirectResponse
from fastapi.responses import Response
from sqlalchemy.exc import OperationalError

from controlplane.api.deps import SessionDep
from controlplane.api.params import RowId
from controlplane.api.params import ScheduleRef
from controlplane.api.routes import schedules as schedules_api
from controlplane.api.routes import tuning as tuning_api
from controlplane.domain import NotFoundError
from controlplane.domain import parse_slo
from controlplane.domain.tuning import TUNING_RUN_LIFECYCLE
from controlplane.domain.tuning import TuningRunState
from controlplane.schemas.engines import EngineRead
from controlplane.schemas.schedules import ScheduleRead
from controlplane.schemas.tuning import TuningCreate
from controlplane.schemas.tuning import TuningRunRead
from controlplane.store import engines
from controlplane.store import fleet
from controlplane.store import schedules
from controlplane.store import tuning
from controlplane.ui.auth import UiOperator
from controlplane.ui.auth import UiUser
from controlplane.ui.auth import UiViewer
from controlplane.ui.forms import FormErrors
from controlplane.ui.forms import act
from controlplane.ui.forms import parse
from controlplane.ui.render import page
from tuner import list_trials
from tuner import opened_storage
from tuner import report_figures
from tuner import report_path
from tuner import storage_url
from tuner import study_exists

log = logging.getLogger(__name__)
router = APIRouter(prefix="/ui", include_in_schema=False)


def _list(
    request: Request,
    session: SessionDep,
    user: UiUser,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with session.begin():
        runs = [TuningRunRead.model_validate(r) for r in tuning.list_runs(session, limit=100)]
        names = fleet.engine_names(session)
        scheds = [ScheduleRead.model_validate(r) for r in schedules.list_schedules(session)]
    history = {
        s.id: schedules_api.schedule_history(
            schedule=str(s.id), session=session, who=user.principal, limit=5
        )
        for s in scheds
    }
    return page(
        request,
        "tuning.html",
        user,
        status_code=status_code,
        section="tuning",
        runs=runs,
        names=names,
        schedules=scheds,
        history=history,
        errors=errors or {},
        form=form or {},
    )


@router.get("/tuning")
def tuning_list(request: Request, session: SessionDep, user: UiViewer) -> Response:
    return _list(request, session, user)


def _words(text: str) -> list[str]:
    return [w for w in text.replace(",", " ").split() if w]


@router.post("/tuning")
async def start_run(request: Request, session: SessionDep, user: UiOperator) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    data: dict[str, Any] = {
        "objective": form.get("objective", "goodput"),
        "load": form.get("load", ""),
        "trials": form.get("trials", ""),
        "sampler": form.get("sampler", "auto"),
        "knobs": _words(form.get("knobs", "")),
        "slo": [s.strip() for s in form.get("slo", "").split(";") if s.strip()],
        "apply_best": form.get("apply_best") == "on",
    }
    engine = form.get("engine", "").strip()
    try:
        if not engine:
            raise FormErrors({"engine": "choose an engine"})
        body = parse(TuningCreate, data)
        run = act(
            lambda: tuning_api.start_tuning(
                engine=engine, body=body, request=request, session=session, who=user.principal
            ),
            default_field="engine",
        )
    except FormErrors as exc:
        return _list(request, session, user, errors=exc.errors, form=form, status_code=422)
    return RedirectResponse(f"/ui/tuning/{run.id}", status_code=303)


def _trials(request: Request, study: str) -> list[Any]:
    if not study_exists(request.app.state.db_engine, study):
        return []
    try:
        return list(list_trials(storage_url(request.app.state.db_engine), study))
    except NotFoundError:
        return []
    except OperationalError as exc:
        # The run's first moments: the tuner may be creating Optuna's tables right now (a
        # second creator fails on SQLite). The page polls; the next answer has the trials.
        log.debug("trials of %s not readable yet: %s", study, exc)
        return []


def _detail(request: Request, session: SessionDep, run_id: int) -> dict[str, Any]:
    with session.begin():
        run = TuningRunRead.model_validate(tuning.get_run(session, run_id))
        engine = EngineRead.from_row(engines.get_engine(session, run.engine_id))
    result = run.result or {}
    remeasured = result.get("remeasured") or {}
    return {
        "run": run,
        "engine": engine,
        "trials": _trials(request, run.study_name),
        "result": result,
        "remeasured": remeasured if isinstance(remeasured, dict) else {},
        "has_report": report_path(request.app.state.settings, run.study_name).is_file(),
        "terminal": TuningRunState(run.state) not in TUNING_RUN_LIFECYCLE.active,
    }


@router.get("/tuning/{run_id}")
def tuning_run(request: Request, run_id: RowId, session: SessionDep, user: UiViewer) -> Response:
    ctx = _detail(request, session, run_id)
    return page(request, "tuning_run.html", user, section="tuning", errors={}, **ctx)


@router.get("/tuning/{run_id}/live")
def tuning_run_live(
    request: Request, run_id: RowId, session: SessionDep, user: UiViewer
) -> Response:
    return page(request, "fragments/tuning_live.html", user, **_detail(request, session, run_id))


@router.get("/tuning/{run_id}/plots.json")
def tuning_plots(request: Request, run_id: RowId, session: SessionDep, user: UiViewer) -> Response:
    """The report's figures as Plotly JSON: optimization history, parameter importance,
    throughput vs p99 with the feasible Pareto front and the SLO lines."""
    with session.begin():
        run = tuning.get_run(session, run_id)
    slos = [parse_slo(s) for s in (run.spec or {}).get("slos", [])]
    out: list[dict[str, Any]] = []
    if not study_exists(request.app.state.db_engine, run.study_name):
        return JSONResponse({"plots": []})
    with opened_storage(storage_url(request.app.state.db_engine)) as storage:
        try:
            study = optuna.load_study(study_name=run.study_name, storage=storage)
        except (KeyError, OperationalError):
            return JSONResponse({"plots": []})
        for title, fig in report_figures(study, slos):
            if isinstance(fig, str):
                out.append({"title": title, "note": fig})
            else:
                out.append({"title": title, "figure": json.loads(pio.to_json(fig))})
    return JSONResponse({"plots": out})


@router.get("/tuning/{run_id}/report")
def tuning_report(
    request: Request, run_id: RowId, session: SessionDep, user: UiViewer
) -> Response:
    """The run's self-contained HTML report, as a download: it carries Plotly inline, which
    the UI's own pages (no inline scripts) would refuse to run."""
    with session.begin():
        run = tuning.get_run(session, run_id)
    path = report_path(request.app.state.settings, run.study_name)
    if not path.is_file():
        raise NotFoundError(f"tuning run {run_id} has no report (yet)")
    return FileResponse(
        path,
        media_type="text/html",
        filename=f"{run.study_name}.html",
        content_disposition_type="attachment",
    )


@router.post("/tuning/{run_id}/stop")
def stop_run(request: Request, run_id: RowId, session: SessionDep, user: UiOperator) -> Response:
    return _act_on(
        request,
        session,
        user,
        run_id,
        lambda: tuning_api.stop_tuning_run(
            run_id=run_id, request=request, session=session, who=user.principal
        ),
    )


@router.post("/tuning/{run_id}/resume")
def resume_run(request: Request, run_id: RowId, session: SessionDep, user: UiOperator) -> Response:
    return _act_on(
        request,
        session,
        user,
        run_id,
        lambda: tuning_api.resume_tuning_run(
            run_id=run_id, request=request, session=session, who=user.principal
        ),
    )


def _act_on(
    request: Request, session: SessionDep, user: UiUser, run_id: int, action: Any
) -> Response:
    try:
        act(action)
    except FormErrors as exc:
        ctx = _detail(request, session, run_id)
        return page(
            request,
            "tuning_run.html",
            user,
            section="tuning",
            status_code=409,
            errors=exc.errors,
            **ctx,
        )
    return RedirectResponse(f"/ui/tuning/{run_id}", status_code=303)


@router.post("/schedules/{schedule}/pause")
def pause_schedule(
    request: Request, schedule: ScheduleRef, session: SessionDep, user: UiOperator
) -> Response:
    return _schedule_action(
        request,
        session,
        user,
        lambda: schedules_api.pause_schedule(
            schedule=schedule, session=session, who=user.principal
        ),
    )


@router.post("/schedules/{schedule}/resume")
def resume_schedule(
    request: Request, schedule: ScheduleRef, session: SessionDep, user: UiOperator
) -> Response:
    return _schedule_action(
        request,
        session,
        user,
        lambda: schedules_api.resume_schedule(
            schedule=schedule, session=session, who=user.principal
        ),
    )


def _schedule_action(request: Request, session: SessionDep, user: UiUser, action: Any) -> Response:
    try:
        act(action)
    except FormErrors as exc:
        return _list(request, session, user, errors=exc.errors, status_code=409)
    return RedirectResponse("/ui/tuning#schedules", status_code=303)
