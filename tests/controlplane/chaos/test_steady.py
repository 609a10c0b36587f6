"""What a fault cost the engine, from stored scrapes: failed requests from the engine's error
counter and seconds in SLO violation, judged by the shared SLO rule, counter resets included,
stored on the experiment."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from controlplane.chaos._steady import evaluate
from controlplane.chaos._steady import scrapes_of
from controlplane.domain import Sample
from controlplane.domain import parse_slo
from controlplane.domain.windows import Snapshot
from controlplane.domain.windows import increase
from controlplane.domain.windows import violations
from controlplane.settings import Settings
from controlplane.store import chaos as chaos_store
from controlplane.store import samples as sample_store
from controlplane.store import schema
from controlplane.store.database import make_engine
from controlplane.store.database import make_session_factory
from controlplane.store.database import unit_of_work

BOUNDS = (0.1, 0.25, 0.5, math.inf)
FAULT = range(9, 13)  # the scrapes at 9..12 s count requests served during the fault


def _scrapes(restart_at: int | None = None) -> list[Sample]:
    """One scrape a second for 20 s, 10 requests between scrapes, two labels (models) so
    the sum over labels matters. During the fault half the requests take over 0.5 s and
    one fails per second; ``restart_at`` zeroes every counter there (an engine restart)."""
    out: list[Sample] = []
    cum: dict[tuple[str, str], float] = {}
    for t in range(21):
        if t == restart_at:
            cum = {}
        on = 0 if t == 0 else 1  # the first scrape reads zeros
        for model in ("a", "b"):
            slow = 3 if t in FAULT else 0
            for le in BOUNDS:
                within = 2 + (slow if le == math.inf else 0)  # fast ones take < 0.1 s
                key = (model, repr(le))
                cum[key] = cum.get(key, 0.0) + on * within
            key = (model, "failed")
            cum[key] = cum.get(key, 0.0) + on * (1 if t in FAULT and model == "a" else 0)
            key = (model, "ok")
            cum[key] = cum.get(key, 0.0) + on * (2 + slow)
        for (model, what), value in sorted(cum.items()):
            if what == "failed":
                out.append(
                    Sample(float(t), "ref", "requests_failed_total", (("m", model),), value)
                )
            elif what == "ok":
                out.append(
                    Sample(float(t), "ref", "requests_succeeded_total", (("m", model),), value)
                )
            else:
                le = "+Inf" if what == "inf" else str(float(what))
                labels = (("le", le), ("m", model))
                out.append(
                    Sample(float(t), "ref", "request_latency_seconds_bucket", labels, value)
                )
    return out


def test_summed_increases_equal_one_difference_without_a_restart() -> None:
    samples = _scrapes()
    by_ts = {s.ts: [x for x in samples if x.ts == s.ts] for s in samples}
    slo = parse_slo("p99_ms<=200", window_s=2.0)
    scrapes = scrapes_of(samples)
    for a, b in ((0, 5), (7, 12), (10, 11), (3, 20)):
        summed = violations(increase(scrapes[a : b + 1]), slo)
        window = Snapshot.of(by_ts[float(b)], ts=b).since(Snapshot.of(by_ts[float(a)], ts=a))
        assert summed == violations(window, slo), (a, b)
    # 200 ms sits between bounds: the 0.25 s bound is used (lenient, as the guard is).
    assert violations(increase(scrapes[9:13]), slo).bound == 0.25


@pytest.mark.parametrize("restart_at", [None, 11])
def test_failed_requests_and_seconds_in_violation(restart_at: int | None) -> None:
    slo = parse_slo("p99_ms<=250", window_s=2.0)
    out = evaluate(_scrapes(restart_at), [slo], start=6.5, end=16.5)
    # The error counter rose by one a second during the fault, a restart notwithstanding.
    assert out["failed_requests"] == len(FAULT)
    # A 2 s window at scrape t holds the increases at t - 1 and t, so the slow requests
    # counted at 9..12 make the SLO violated at the scrapes 9..13: five seconds.
    assert out["slo_violation_s"] == pytest.approx(5.0)
    assert out["evaluated_s"] == pytest.approx(10.0 - 0.5)
    assert out["slos"][0]["violating"] == 2 * 3 * len(FAULT)


def test_a_loose_slo_and_no_data_are_told_apart() -> None:
    loose = parse_slo("p99_ms<=1000", window_s=2.0)
    out = evaluate(_scrapes(), [loose], start=6.5, end=16.5)
    assert out["slo_violation_s"] == 0.0 and out["failed_requests"] == len(FAULT)
    # One failure among 11 requests a second during the fault: 9 %.
    for objective, violated in (("error_rate<=10%", 0.0), ("error_rate<=5%", 5.0)):
        out = evaluate(_scrapes(), [parse_slo(objective, window_s=2.0)], start=6.5, end=16.5)
        assert out["slo_violation_s"] == pytest.approx(violated), objective
    nothing = evaluate([], [loose], start=6.5, end=16.5)
    assert nothing["failed_requests"] is None and nothing["slo_violation_s"] is None
    assert "fewer than two" in nothing["note"]


def test_from_the_store_onto_the_experiment(tmp_path: Path) -> None:
    engine = make_engine(Settings(data_dir=tmp_path))
    schema.upgrade(engine)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as s:
        sample_store.insert_samples(s, _scrapes())
        row = chaos_store.start_experiment(
            s, target="pid:1", fault="pause", duration_s=10, expected="any",
            hypothesis=[], engine_id=None, actor="t",
        )  # fmt: skip
        stored = chaos_store.engine_samples(
            s, source="ref", metrics=("requests_failed_total",), start=6.0, end=17.0
        )
        assert {x.ts for x in stored} == {float(t) for t in range(6, 18)}
        out = evaluate(
            chaos_store.engine_samples(
                s, source="ref",
                metrics=("request_latency_seconds_bucket", "requests_failed_total",
                         "requests_succeeded_total"),
                start=4.5, end=16.5,
            ),
            [parse_slo("p99_ms<=250", window_s=2.0)], start=6.5, end=16.5,
        )  # fmt: skip
        chaos_store.finish_experiment(
            s, row.id, state="completed", result={"steady_state": out}, actor="t",
            failed_requests=out["failed_requests"], slo_violation_s=out["slo_violation_s"],
        )  # fmt: skip
    with factory() as s:
        got = chaos_store.get_experiment(s, row.id)
        assert (got.failed_requests, got.slo_violation_s) == (len(FAULT), pytest.approx(5.0))
    engine.dispose()
