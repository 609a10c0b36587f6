"""``GET /api/v1/series``: stored samples of one engine's metric, downsampled per step, as
per-second rates of counters, or as quantiles computed from histogram buckets the way
``histogram_quantile`` does."""

from __future__ import annotations

import time
from typing import Annotated
from typing import Literal

from fastapi import APIRouter
from fastapi import Query
from fastapi.exceptions import RequestValidationError

from collectors._query import quantile_series
from collectors._query import rate_series
from collectors._query import sum_by_le
from controlplane.api.deps import SessionDep
from controlplane.api.deps import Viewer
from controlplane.schemas.samples import TS_MAX
from controlplane.schemas.samples import SeriesRead
from controlplane.schemas.samples import SeriesResponse
from controlplane.store import samples as sample_store

router = APIRouter(prefix="/api/v1/series", tags=["Series"])

MAX_POINTS = 11_000  # Prometheus's own limit on points per series in a range query


def _query_error(param: str, message: str) -> RequestValidationError:
    """A 422 located in the query string, like FastAPI's own for these parameters."""
    return RequestValidationError(
        [{"loc": ("query", param), "msg": message, "type": "value_error", "input": None}]
    )


def _labels(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise _query_error("labels", f"label {pair!r} is not key=value")
        out[key] = value
    return out


@router.get("", response_model=SeriesResponse)
def get_series(
    session: SessionDep,
    who: Viewer,
    engine: Annotated[str, Query(min_length=1, max_length=200, description="Engine (source).")],
    metric: Annotated[str, Query(min_length=1, max_length=200, description="Canonical series.")],
    labels: Annotated[
        list[str] | None, Query(description="key=value filters, repeatable; all must match.")
    ] = None,
    start: Annotated[
        float | None,
        Query(alias="from", ge=0, le=TS_MAX, description="Unix s; default to-1h."),
    ] = None,
    end: Annotated[
        float | None, Query(alias="to", ge=0, le=TS_MAX, description="Unix s; default now.")
    ] = None,
    step: Annotated[float, Query(gt=0, le=86400, description="Seconds between points.")] = 60.0,
    window: Annotated[
        float | None, Query(gt=0, le=86400, description="Rate/quantile window; default step.")
    ] = None,
    quantile: Annotated[
        float | None,
        Query(ge=0, le=1, description="Quantile of a histogram series (its _bucket samples)."),
    ] = None,
    rate: Annotated[bool, Query(description="Per-second rate of a counter.")] = False,
    agg: Annotated[
        Literal["last", "avg", "min", "max"], Query(description="Downsampling per step.")
    ] = "last",
) -> SeriesResponse:
    """Points are stamped at the end of each step; steps without data are left out."""
    to = time.time() if end is None else end
    frm = to - 3600.0 if start is None else start
    if frm >= to:
        raise _query_error("from", "'from' must be before 'to'")
    if (to - frm) / step > MAX_POINTS:
        raise _query_error(
            "step", f"{(to - frm) / step:.0f} points per series is over {MAX_POINTS}; raise 'step'"
        )
    if quantile is not None and rate:
        raise _query_error("rate", "choose 'quantile' or 'rate', not both")
    want = _labels(labels or [])
    win = window or step
    out: list[SeriesRead] = []
    with session.begin():
        if quantile is not None:
            base = metric.removesuffix("_bucket")
            data = sample_store.fetch_series(
                session,
                source=engine,
                metric=f"{base}_bucket",
                start=frm - win,
                end=to,
                labels=want,
            )
            buckets = sum_by_le([(d.labels, d.points) for d in data])
            points = quantile_series(buckets, quantile, start=frm, end=to, step=step, window=win)
            out.append(SeriesRead(labels={"quantile": f"{quantile:g}"}, points=points))
        else:
            data = sample_store.fetch_series(
                session,
                source=engine,
                metric=metric,
                start=frm - (win if rate else 0.0),
                end=to,
                labels=want,
            )
            for d in data:
                if rate:
                    points = rate_series(d.points, start=frm, end=to, step=step, window=win)
                else:
                    points = sample_store.downsample(
                        d.points, start=frm, end=to, step=step, agg=agg
                    )
                out.append(SeriesRead(labels=d.labels, points=points))
    return SeriesResponse(engine=engine, metric=metric, start=frm, end=to, step=step, series=out)
