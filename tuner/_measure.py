"""Measuring one configuration: warm-up, then windows until the numbers hold still.

The rule is perf_analyzer's, which Model Analyzer relies on: at least ``min_windows``
windows, and the last ones within ``tolerance`` of each other on throughput *and* p99;
an unstable measurement grows the next window (short windows are mostly noise) and gives up
after ``max_windows``, reporting itself unstable instead of looping forever. Warm-up is run
and thrown away: right after a switch the engine builds executors and fills caches, and
those first requests explained a Model Analyzer bug report on their own.

Two sources of windows: synthetic load from :mod:`tuner.loadgen` (open loop at a rate, or
closed loop at a concurrency), and live traffic read from the engine's own metrics (the
guard's probe), which never adds load to a production engine. Live traffic is not ours to
hold steady, so a live trial is compared with the baseline *at the baseline's load*: only
windows whose request rate is close to the baseline's count, and their goodput is scaled
to the baseline's rate, so a trial that happens to meet a traffic peak is not credited with
the peak (see :class:`LiveMeasurer`).
"""

from __future__ import annotations

import asyncio
import math
import statistics
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from typing import Any
from typing import Protocol

import httpx

from collectors import histogram_quantile
from controlplane.domain import SLO
from controlplane.domain import DomainError
from controlplane.domain import EngineUnreachableError
from controlplane.domain import Series
from controlplane.domain.windows import Snapshot
from controlplane.domain.windows import violations
from controlplane.engines.base import EngineAdapter
from controlplane.guard.probe import MetricsProbe
from controlplane.schemas.tuning import LoadProfile
from controlplane.settings import TunerSettings
from tuner.loadgen import LoadResult
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import percentile
from tuner.loadgen import run_load


@dataclass(frozen=True)
class Window:
    """One measurement window's numbers. Latencies in seconds, rates per second."""

    duration_s: float
    requests: int
    throughput: float
    goodput: float
    p50_s: float | None
    p99_s: float | None
    quantiles_s: dict[str, float | None]
    """Per SLO name (``p99``, ``ttft_p95``): the observed quantile."""
    error_rate: float
    load_rps: float | None = None
    """Live windows: the request rate actually seen, when goodput and throughput were
    scaled to the baseline's rate."""

    def as_json(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            **({"load_rps": round(self.load_rps, 3)} if self.load_rps is not None else {}),
            "throughput": round(self.throughput, 3),
            "goodput": round(self.goodput, 3),
            "p50_s": _round(self.p50_s),
            "p99_s": _round(self.p99_s),
            "quantiles_s": {k: _round(v) for k, v in self.quantiles_s.items()},
            "error_rate": round(self.error_rate, 6),
        }


@dataclass(frozen=True)
class Measurement:
    """A configuration's numbers: the mean of the windows the stability rule accepted."""

    windows: tuple[Window, ...]
    stable: bool
    used: int
    """How many of the last windows the numbers are the mean of."""
    warmup_s: float = 0.0
    capacity_rps: float | None = None
    """Capacity objective: the highest rate sustained within the SLO (these windows ran at
    it); 0 when not even the lowest rate tried was."""

    def _mean(self, values: Sequence[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.fmean(known) if known else None

    @property
    def accepted(self) -> tuple[Window, ...]:
        return self.windows[-self.used :] if self.used else ()

    @property
    def throughput(self) -> float:
        return self._mean([w.throughput for w in self.accepted]) or 0.0

    @property
    def goodput(self) -> float:
        return self._mean([w.goodput for w in self.accepted]) or 0.0

    @property
    def p99_s(self) -> float | None:
        return self._mean([w.p99_s for w in self.accepted])

    @property
    def error_rate(self) -> float:
        return self._mean([w.error_rate for w in self.accepted]) or 0.0

    def quantile_s(self, name: str) -> float | None:
        return self._mean([w.quantiles_s.get(name) for w in self.accepted])

    @property
    def load_rps(self) -> float | None:
        """Live: the request rate the accepted windows saw (before scaling)."""
        return self._mean([w.load_rps for w in self.accepted])

    def as_json(self) -> dict[str, Any]:
        return {
            "stable": self.stable,
            "used": self.used,
            "warmup_s": self.warmup_s,
            "throughput": round(self.throughput, 3),
            "goodput": round(self.goodput, 3),
            "p99_s": _round(self.p99_s),
            "error_rate": round(self.error_rate, 6),
            **({"load_rps": round(self.load_rps, 3)} if self.load_rps is not None else {}),
            **(
                {"capacity_rps": round(self.capacity_rps, 3)}
                if self.capacity_rps is not None
                else {}
            ),
            "windows": [w.as_json() for w in self.windows],
        }


LIVE_REFERENCE = "live_reference_rps"  # study attribute: the baseline's request rate


class Measurer(Protocol):
    """How a run measures whatever the engine serves now: synthetic load, a rate search
    (capacity) or live traffic. The run never asks which one it has.

    ``measure`` raises EngineUnreachableError if the engine died. ``baseline_measured`` is
    told the baseline's measurement and returns the study attributes a resumed run needs
    (and a line for the operator, if any); ``resume`` gets them back in a new process;
    ``bake_load`` is the load to run while the guard bakes a trial (None: the traffic is
    someone else's); ``close`` releases what the measurer holds.
    """

    def measure(self, *, stop: threading.Event | None = None) -> Measurement: ...

    def baseline_measured(self, m: Measurement) -> tuple[dict[str, Any], str | None]: ...

    def resume(self, attrs: Mapping[str, Any]) -> None: ...

    def bake_load(self) -> SyntheticMeasurer | None: ...

    def close(self) -> None: ...


def spread(values: Sequence[float | None]) -> float:
    """Relative spread max/min - 1 (``inf`` when a value is missing or zero)."""
    known = [v for v in values if v is not None]
    if len(known) < len(values) or not known:
        return math.inf
    low, high = min(known), max(known)
    if low <= 0:
        return 0.0 if high <= 0 else math.inf
    return high / low - 1.0


def is_stable(windows: Sequence[Window], *, n: int, tolerance: float) -> bool:
    """The last ``n`` windows agree within ``tolerance`` on throughput and on p99."""
    if len(windows) < n:
        return False
    last = windows[-n:]
    return (
        spread([w.throughput for w in last]) <= tolerance
        and spread([w.p99_s for w in last]) <= tolerance
    )


def measure_until_stable(
    window: Callable[[float], Window],
    *,
    policy: TunerSettings,
    stop: threading.Event | None = None,
    warmup: Callable[[float], object] | None = None,
) -> Measurement:
    """Warm up (discarded), then windows until stable, growing them while unstable."""
    if warmup is not None and policy.warmup_s > 0:
        warmup(policy.warmup_s)
    windows: list[Window] = []
    length = policy.window_s
    n = min(policy.min_windows, policy.max_windows)
    while len(windows) < policy.max_windows:
        windows.append(window(length))
        if is_stable(windows, n=n, tolerance=policy.tolerance):
            return Measurement(tuple(windows), stable=True, used=n, warmup_s=policy.warmup_s)
        if stop is not None and stop.is_set():
            break
        if len(windows) >= n:
            length *= policy.window_growth
    used = min(n, len(windows))
    return Measurement(tuple(windows), stable=False, used=used, warmup_s=policy.warmup_s)


# -- synthetic load ---------------------------------------------------------------------


def load_spec(
    profile: LoadProfile, *, base_url: str, model: str, duration_s: float, seed: int = 0
) -> LoadSpec:
    if profile.mode == "live":
        raise ValueError("live mode sends no load")
    shapes = tuple(RequestShape(s.prompt_len, s.max_tokens, s.weight) for s in profile.shapes)
    return LoadSpec(
        base_url=base_url,
        model=model,
        mode=profile.mode,
        rate=profile.rate,
        concurrency=profile.concurrency,
        duration_s=duration_s,
        shapes=shapes,
        stream=False,
        timeout_s=max(10.0, duration_s * 4),
        seed=seed,
        extra_body={"ignore_eos": True},
    )


def window_of(result: LoadResult, slos: Sequence[SLO], *, goodput_slo_s: float | None) -> Window:
    """A loadgen run as a window: goodput counts requests within the latency SLO."""
    quantiles: dict[str, float | None] = {}
    for slo in slos:
        if slo.quantile is None:
            continue
        values = result.latencies if slo.kind == "latency" else result.ttfts
        quantiles[slo.name] = percentile(values, slo.quantile * 100)
    sent = result.sent
    errors = (result.failed + result.rejected) / sent if sent else 0.0
    if result.ok == 0 and sent == 0:
        errors = 0.0
    goodput = result.goodput(goodput_slo_s) if goodput_slo_s is not None else result.achieved_rps
    return Window(
        duration_s=result.wall_s,
        requests=sent,
        throughput=result.achieved_rps,
        goodput=goodput,
        p50_s=result.p50,
        p99_s=result.p99,
        quantiles_s=quantiles,
        error_rate=errors,
    )


def first_model(base_url: str) -> str:
    """The engine's first served model: what synthetic load asks for when none is named."""
    try:
        body = httpx.get(f"{base_url}/v1/models", timeout=5).json()
        return str(body["data"][0]["id"])
    except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise EngineUnreachableError(f"cannot list the engine's models: {exc}") from exc


def goodput_threshold(slos: Sequence[SLO]) -> float | None:
    """Goodput counts requests within the tightest end-to-end latency SLO (if any)."""
    latency = [s.threshold for s in slos if s.kind == "latency"]
    return min(latency) if latency else None


class SyntheticMeasurer:
    """Drives the engine with the run's load profile and measures it from the client side."""

    def __init__(
        self,
        *,
        profile: LoadProfile,
        base_url: str,
        model: str,
        slos: Sequence[SLO],
        policy: TunerSettings,
        adapter: EngineAdapter | None = None,
    ) -> None:
        self._profile = profile
        self._url = base_url
        self._model = model
        self._slos = tuple(slos)
        self._policy = policy
        self._adapter = adapter
        self._seed = 0

    @property
    def rate(self) -> float | None:
        return self._profile.rate

    def set_rate(self, rate: float) -> None:
        """Open loop at ``rate`` from now on (the capacity search steps it)."""
        mode = self._profile.mode if self._profile.mode in ("constant", "poisson") else "constant"
        self._profile = self._profile.model_copy(update={"mode": mode, "rate": rate,
                                                         "concurrency": None})  # fmt: skip

    def run_once(self, duration_s: float) -> LoadResult:
        self._seed += 1
        spec = load_spec(
            self._profile,
            base_url=self._url,
            model=self._model,
            duration_s=duration_s,
            seed=self._seed,
        )
        return asyncio.run(run_load(spec))

    def window(self, duration_s: float) -> Window:
        result = self.run_once(duration_s)
        if result.sent and result.ok == 0 and self._adapter is not None:
            # Every request failed: a dead engine is a failed trial, not a terrible config.
            health = self._adapter.health()
            if not health.ok:
                raise EngineUnreachableError(f"engine stopped answering: {health.detail}")
        return window_of(result, self._slos, goodput_slo_s=goodput_threshold(self._slos))

    def measure(self, *, stop: threading.Event | None = None) -> Measurement:
        return measure_until_stable(
            self.window, policy=self._policy, stop=stop, warmup=self.run_once
        )

    def baseline_measured(self, m: Measurement) -> tuple[dict[str, Any], str | None]:
        return {}, None

    def resume(self, attrs: Mapping[str, Any]) -> None:
        return None

    def bake_load(self) -> SyntheticMeasurer | None:
        return self

    def close(self) -> None:
        return None


class CapacityMeasurer:
    """The capacity objective's measurement: a short rate search on whatever the engine
    serves now, for the highest request rate it sustains within the SLO.

    It starts from the best capacity seen so far in the run (a config that cannot carry
    that is found out with its first probe), steps the rate up by ``capacity_step`` while
    the SLO holds and bisects (geometrically) between the last sustained and the first
    failing rate once one fails, until the two are within ``capacity_precision`` or
    ``capacity_max_probes`` rates were measured. Each probe is an ordinary measurement
    (warm-up, windows until stable) at an open-loop rate; a rate is *sustained* when every
    SLO holds with the run's margin. Open loop keeps sending on schedule, so an engine that
    cannot keep up queues, and its latency SLO fails: no separate throughput test is needed
    (one would misjudge short windows, whose last responses arrive after the schedule ends).
    """

    def __init__(
        self,
        synthetic: SyntheticMeasurer,
        *,
        slos: Sequence[SLO],
        policy: TunerSettings,
        margin: float,
        start_rps: float,
    ) -> None:
        self.synthetic = synthetic
        self._slos = tuple(slos)
        self._policy = policy
        self._margin = margin
        self.start_rps = start_rps
        self.best_rps = start_rps
        self.probes: list[tuple[float, bool]] = []
        """Every (rate, sustained) this measurer tried, in order, for the report."""

    def sustained(self, m: Measurement, rate: float) -> bool:
        for slo in self._slos:
            limit = slo.threshold * (1.0 - self._margin)
            if slo.kind == "error_rate":
                if m.error_rate > limit:
                    return False
                continue
            observed = m.quantile_s(slo.name)
            if observed is None or observed > limit:
                return False
        return True

    def measure(self, *, stop: threading.Event | None = None) -> Measurement:
        policy = self._policy
        rate = self.best_rps
        good: tuple[float, Measurement] | None = None
        bad: tuple[float, Measurement] | None = None
        for _ in range(policy.capacity_max_probes):
            self.synthetic.set_rate(rate)
            m = self.synthetic.measure(stop=stop)
            ok = self.sustained(m, rate)
            self.probes.append((rate, ok))
            if ok:
                good = (rate, m)
            else:
                bad = (rate, m)
            if stop is not None and stop.is_set():
                break
            if good is not None and bad is not None:
                if bad[0] / good[0] - 1.0 <= policy.capacity_precision:
                    break
                rate = math.sqrt(good[0] * bad[0])
            elif good is not None:
                rate = good[0] * policy.capacity_step
            else:
                rate = rate / policy.capacity_step
        if good is not None:
            self.best_rps = max(self.best_rps, good[0])
        if good is None:
            assert bad is not None
            return replace(bad[1], capacity_rps=0.0)
        return replace(good[1], capacity_rps=good[0])

    def baseline_measured(self, m: Measurement) -> tuple[dict[str, Any], str | None]:
        return {}, None

    def resume(self, attrs: Mapping[str, Any]) -> None:
        return None

    def bake_load(self) -> SyntheticMeasurer | None:
        # The guard bakes a switch under the rate the operator named, not the best capacity
        # found: switching back to the default for its re-measurement under the tuned
        # config's capacity would be a breach by construction.
        self.synthetic.set_rate(self.start_rps)
        return self.synthetic

    def close(self) -> None:
        return None


class BackgroundLoad:
    """The run's load in a thread while the guard bakes a trial's rollout: the guard judges
    by the engine's metrics, which need traffic. Runs in short chunks so it stops promptly;
    the chunks' results are kept (a breached trial's numbers come from them)."""

    def __init__(self, measurer: SyntheticMeasurer, *, chunk_s: float = 1.0) -> None:
        self._measurer = measurer
        self._chunk_s = chunk_s
        self._done = threading.Event()
        self.results: list[LoadResult] = []
        self._thread = threading.Thread(target=self._loop, name="tuner-load", daemon=True)

    def __enter__(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=60)

    def mark(self) -> int:
        """Index of the next chunk: results after a mark belong to the new config."""
        return len(self.results)

    def _loop(self) -> None:
        while not self._done.is_set():
            try:
                self.results.append(self._measurer.run_once(self._chunk_s))
            except Exception:  # noqa: BLE001 - the guard, not the load, judges the engine
                self._done.wait(0.2)


# -- live traffic -----------------------------------------------------------------------


class LiveLoadMismatchError(DomainError):
    """Live traffic stayed away from the load the baseline was measured at."""


class LiveMeasurer:
    """Windows of real traffic, read from the engine's metrics (counters and histograms).

    The baseline's measurement fixes ``reference_rps``, the request rate every later trial
    is judged at. A trial's window counts only when its rate is within
    ``live_load_tolerance`` of it; its goodput and throughput are then scaled by
    ``reference / seen``, which keeps the share of requests that met the SLO and removes
    the traffic's own swing. Windows at another load are dropped; after ``max_windows`` of
    them in a row the trial fails (the study goes on), since comparing a config measured at
    twice the baseline's traffic with the baseline says nothing about the config. The rate
    is requests *finished* per second, which is the arrival rate for a config that keeps
    up; one that falls behind sees fewer and fails to match, and such a config is almost
    always breaching its latency SLO, which the guard judges first.
    """

    def __init__(
        self,
        *,
        adapter: EngineAdapter,
        slos: Sequence[SLO],
        policy: TunerSettings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._probe = MetricsProbe(adapter, timeout_s=2.0)
        self._slos = tuple(slos)
        self._policy = policy
        self._sleep = sleep
        self.reference_rps: float | None = None

    def _snapshot(self) -> Snapshot:
        snap = self._probe.snapshot()
        if snap is None:
            raise EngineUnreachableError("engine metrics could not be scraped")
        return snap

    def window(self, duration_s: float) -> Window:
        first = self._snapshot()
        self._sleep(duration_s)
        last = self._snapshot()
        return live_window(last.since(first), self._slos, duration_s=max(1e-9, last.ts - first.ts))

    def matched_window(self, duration_s: float, *, stop: threading.Event | None = None) -> Window:
        """The next window at the baseline's load, scaled to it exactly."""
        reference = self.reference_rps
        if not reference:
            return self.window(duration_s)
        tolerance = self._policy.live_load_tolerance
        seen: list[float] = []
        while len(seen) < self._policy.max_windows:
            w = self.window(duration_s)
            rate = w.requests / w.duration_s
            if abs(rate / reference - 1.0) <= tolerance:
                return at_load(w, reference)
            seen.append(rate)
            if stop is not None and stop.is_set():
                break
        rates = ", ".join(f"{r:.1f}" for r in seen)
        raise LiveLoadMismatchError(
            f"live traffic at {rates} req/s, not within {tolerance:.0%} of the baseline's "
            f"{reference:.1f} req/s in {len(seen)} windows"
        )

    def measure(self, *, stop: threading.Event | None = None) -> Measurement:
        return measure_until_stable(
            lambda seconds: self.matched_window(seconds, stop=stop),
            policy=self._policy,
            stop=stop,
            warmup=self._sleep,
        )

    def baseline_measured(self, m: Measurement) -> tuple[dict[str, Any], str | None]:
        reference = self.set_reference(m)
        return (
            {LIVE_REFERENCE: reference},
            f"live trials are judged at the baseline's {reference:.1f} req/s",
        )

    def resume(self, attrs: Mapping[str, Any]) -> None:
        # A resumed live run judges its trials at the load its baseline was measured at.
        self.reference_rps = attrs.get(LIVE_REFERENCE)

    def bake_load(self) -> SyntheticMeasurer | None:
        return None

    def set_reference(self, baseline: Measurement) -> float:
        """The baseline's request rate over its accepted windows: what trials are judged at."""
        accepted = baseline.accepted
        seconds = sum(w.duration_s for w in accepted)
        self.reference_rps = sum(w.requests for w in accepted) / seconds if seconds else 0.0
        return self.reference_rps

    def close(self) -> None:
        self._probe.close()


def at_load(w: Window, reference_rps: float) -> Window:
    """``w``'s rates as they would be at ``reference_rps`` with the same shares of good and
    failed requests; latencies are kept (they were seen at a load within tolerance)."""
    seen = w.requests / w.duration_s
    factor = reference_rps / seen if seen else 1.0
    return replace(w, throughput=w.throughput * factor, goodput=w.goodput * factor, load_rps=seen)


def live_window(window: Snapshot, slos: Sequence[SLO], *, duration_s: float) -> Window:
    ok = window.values.get(Series.requests_succeeded.value, 0.0)
    failed = window.values.get(Series.requests_failed.value, 0.0)
    latency = sorted(window.buckets.get(Series.request_latency.value, {}).items())
    good = ok
    threshold = goodput_threshold(slos)
    if threshold is not None:
        slo = next(s for s in slos if s.kind == "latency" and s.threshold == threshold)
        counted = violations(window, slo)
        good = max(0.0, ok - counted.k)
    quantiles: dict[str, float | None] = {}
    for slo in slos:
        if slo.quantile is not None:
            per_le = sorted(window.buckets.get(slo.series.value, {}).items())
            quantiles[slo.name] = _quantile(slo.quantile, per_le)
    total = ok + failed
    return Window(
        duration_s=duration_s,
        requests=round(total),
        throughput=ok / duration_s,
        goodput=good / duration_s,
        p50_s=_quantile(0.5, latency),
        p99_s=_quantile(0.99, latency),
        quantiles_s=quantiles,
        error_rate=failed / total if total else 0.0,
    )


def _quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    if not buckets:
        return None
    value = histogram_quantile(q, buckets)
    return None if math.isnan(value) else value


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
