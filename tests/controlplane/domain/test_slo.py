from __future__ import annotations

import pytest

from controlplane.domain import SLO
from controlplane.domain import Series
from controlplane.domain import ValidationError
from controlplane.domain import parse_slo


@pytest.mark.parametrize(
    ("text", "kind", "threshold", "quantile", "allowed"),
    [
        ("p99_ms<=300", "latency", 0.3, 0.99, 0.01),
        ("P95_S <= 1.5", "latency", 1.5, 0.95, 0.05),
        ("ttft_p99.9_ms<=200", "ttft", 0.2, 0.999, 0.001),
        ("error_rate<=1%", "error_rate", 0.01, None, 0.01),
        ("error_rate<=0.005", "error_rate", 0.005, None, 0.005),
    ],
)
def test_parse(
    text: str, kind: str, threshold: float, quantile: float | None, allowed: float
) -> None:
    slo = parse_slo(text)
    assert slo.kind == kind
    assert slo.threshold == pytest.approx(threshold)
    assert slo.quantile == (None if quantile is None else pytest.approx(quantile))
    assert slo.allowed_violation_rate == pytest.approx(allowed)
    assert parse_slo(slo.spec()) == slo  # round trip


@pytest.mark.parametrize(
    "text", ["p99<=300", "p99_ms>=300", "p100_ms<=1", "latency<=3", "error_rate<=1.5", ""]
)
def test_bad_specs_are_validation_errors(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_slo(text)


def test_series_and_name() -> None:
    assert parse_slo("ttft_p95_ms<=500").series is Series.time_to_first_token
    assert parse_slo("ttft_p95_ms<=500").name == "ttft_p95"
    assert SLO("error_rate", 0.01).series is Series.requests_failed
