"""Time-series I/O: ingest batches pushed by agents and series answered by the query API.

An ingest batch is validated row by row with pydantic, so an error's ``loc`` names the row
(``["body", "samples", 17, "value"]``) and the whole batch is refused before anything is
stored.
"""

from __future__ import annotations

from pydantic import Field
from pydantic import field_validator

from controlplane.schemas.base import InputModel
from controlplane.schemas.base import ReadModel

# Unix seconds: not before 2000-01-01, not after 2100-01-01 (milliseconds by mistake fail).
TS_MIN = 946_684_800.0
TS_MAX = 4_102_444_800.0
MAX_BATCH = 50_000


class IngestSample(InputModel):
    ts: float = Field(ge=TS_MIN, le=TS_MAX, description="Unix seconds.")
    source: str = Field(min_length=1, max_length=200)
    metric: str = Field(min_length=1, max_length=200, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    labels: dict[str, str] = Field(default_factory=dict, max_length=32)
    value: float = Field(allow_inf_nan=False)

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for key, value in labels.items():
            if not key or len(key) > 100 or len(value) > 1000:
                raise ValueError("label names must be 1-100 and values up to 1000 characters")
        return labels


class IngestBatch(InputModel):
    samples: list[IngestSample] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResult(ReadModel):
    stored: int
    duplicate: bool


class SeriesRead(ReadModel):
    labels: dict[str, str]
    points: list[tuple[float, float]]


class SeriesResponse(ReadModel):
    engine: str
    metric: str
    start: float
    end: float
    step: float
    series: list[SeriesRead]
