from __future__ import annotations

from datetime import datetime

from pydantic import Field

from controlplane.domain import SLO
from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel


class SloCreate(InputModel):
    spec: str = Field(
        max_length=64,
        description="`p99_ms<=300`, `ttft_p95_ms<=500`, `error_rate<=1%` or a quality spec "
        "(`quality>=0.98`, `quality_exact>=0.9`, `quality_kl<=0.02`).",
    )
    window_s: float = Field(30.0, gt=0, le=86_400, description="Evaluation window.")


class SloRead(ReadModel):
    id: int
    engine_id: int
    name: str
    kind: str
    quantile: float | None
    threshold: float
    window_s: float
    spec: str
    created: datetime

    @classmethod
    def from_row(cls, row: object) -> SloRead:
        if row.kind == "quality":  # type: ignore[attr-defined]
            op = "<=" if row.name == "quality_kl" else ">="  # type: ignore[attr-defined]
            spec = f"{row.name}{op}{row.threshold:.6g}"  # type: ignore[attr-defined]
            return cls.model_validate({**_attrs(row), "spec": spec})
        slo = SLO(
            kind=row.kind,  # type: ignore[attr-defined]
            threshold=row.threshold,  # type: ignore[attr-defined]
            quantile=row.quantile,  # type: ignore[attr-defined]
            window_s=row.window_s,  # type: ignore[attr-defined]
        )
        return cls.model_validate({**_attrs(row), "spec": slo.spec()})


def _attrs(row: object) -> dict[str, object]:
    names = ("id", "engine_id", "name", "kind", "quantile", "threshold", "window_s", "created")
    return {n: getattr(row, n) for n in names}
