"""An anytime-valid sequential test of a violation rate.

Each finished request either violates an SLO (slower than its threshold, or failed) or not.
Under the null hypothesis the new configuration violates at a rate ``p <= p0`` (``p0`` is the
SLO's allowance, or the baseline's rate when the baseline was already worse). For any fixed
alternative ``p1 > p0`` the likelihood ratio ``(p1/p0)^k ((1-p1)/(1-p0))^(n-k)`` is a
non-negative supermartingale under every ``p <= p0``; so is any mixture of them over a prior
on ``p1``. Ville's inequality then bounds the chance that the ratio *ever* reaches ``1/alpha``
by ``alpha``: the guard may look after every scrape, as often as it likes, and the
false-rollback rate stays below ``alpha`` per bake. Checking a fixed-sample test at every
tick (what per-tick threshold rules amount to) has no such bound.

The mixture (a Beta prior truncated to ``(p0, 1]``) has a closed form. One test alone is
slow to catch a *late* breach: while the new configuration runs below its allowance the ratio
sinks, and must climb back before it can fire. :class:`StaggeredMonitor` therefore starts a
fresh test every few seconds and keeps the old ones running; test ``j`` gets
``alpha_j = alpha / (j (j + 1))``, which sums to ``alpha``, so the union of all of them is
still wrong at most ``alpha`` of the time, and a breach is judged by a test that started
just before it.

All of that assumes requests violate independently of each other. On a shared machine they
do not: a stall of a few hundred milliseconds (another process taking the cores, a pause in
the engine's process) makes every request in flight slow at once, a dozen violations in one
scrape interval and none around it. One such cluster is enough to reject a short test, with
no change at fault. :class:`ConfirmedMonitor` therefore treats a rejection as a *suspicion*
and declares a breach only when a fresh test, over requests that finished after the
suspicion, rejects too within ``confirm_s``. The requests of the look right after the suspicion
are left out (a stall's backlog drains then). A worse config keeps violating and is confirmed
a few requests later; a cluster is over by then, the suspicion is dismissed and the staggered
tests start again from that moment; a second suspicion within ``recur_s`` of a dismissal
is a breach, since stalls are rare and a config near saturation violates in bursts that
each end too soon to confirm. Under independence the confirming test alone keeps each
suspicion's false-breach chance below ``alpha``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import betaincc
from scipy.special import betaln
from scipy.stats import beta as beta_dist


@dataclass(frozen=True)
class MixtureSPRT:
    """H0: violation rate <= ``p0``. Rejects when :meth:`log_ratio` >= ``log(1/alpha)``.

    ``prior_mean`` sets where the Beta(1, b) prior on the alternative puts its mass; the
    default (three times ``p0``) is tuned for "p99 doubled or worse".
    """

    p0: float
    alpha: float = 0.01
    prior_mean: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.p0 < 1.0:
            raise ValueError(f"p0 must be in (0, 1), got {self.p0}")
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")

    @property
    def _prior(self) -> tuple[float, float]:
        mean = self.prior_mean or min(0.5, 3.0 * self.p0)
        mean = min(max(mean, self.p0 * 1.01), 0.99)
        return 1.0, (1.0 - mean) / mean

    @property
    def threshold(self) -> float:
        return math.log(1.0 / self.alpha)

    def log_ratio(self, n: int, k: int) -> float:
        """Log mixture likelihood ratio after ``k`` violations among ``n`` requests."""
        if n < 0 or not 0 <= k <= n:
            raise ValueError(f"need 0 <= k <= n, got n={n}, k={k}")
        a, b = self._prior
        p0 = self.p0
        # log of: int_{p0}^1 p^k (1-p)^(n-k) Beta(p; a, b) dp / P(Beta(a,b) > p0), over the
        # null likelihood p0^k (1-p0)^(n-k).
        numerator = (
            betaln(k + a, n - k + b)
            - betaln(a, b)
            + _log_sf(k + a, n - k + b, p0)
            - _log_sf(a, b, p0)
        )
        null = k * math.log(p0) + (n - k) * math.log1p(-p0)
        return float(numerator - null)

    def rejects(self, n: int, k: int) -> bool:
        return self.log_ratio(n, k) >= self.threshold


@dataclass
class _Started:
    n0: int
    k0: int
    alpha: float


@dataclass(frozen=True)
class Verdict:
    rejected: bool
    log_ratio: float  # of the test closest to rejecting
    threshold: float  # that test's log(1 / alpha_j)
    test_index: int  # 1 = the test started with the bake
    n: int  # requests that test has seen
    k: int  # violations among them


class StaggeredMonitor:
    """Tests started every ``restart_s`` seconds, alpha spent as ``alpha / (j (j + 1))``."""

    def __init__(
        self, *, p0: float, alpha: float, restart_s: float, prior_mean: float | None = None
    ) -> None:
        if restart_s <= 0:
            raise ValueError("restart_s must be positive")
        self.p0, self.alpha, self.restart_s, self.prior_mean = p0, alpha, restart_s, prior_mean
        self._tests: list[_Started] = []
        self._last_start: float | None = None

    def update(self, *, n: int, k: int, now: float) -> Verdict:
        """``n``/``k``: cumulative requests and violations since the bake began."""
        if self._last_start is None or now - self._last_start >= self.restart_s:
            j = len(self._tests) + 1
            self._tests.append(_Started(n, k, self.alpha / (j * (j + 1))))
            self._last_start = now
        best: Verdict | None = None
        for index, test in enumerate(self._tests, start=1):
            sprt = MixtureSPRT(p0=self.p0, alpha=test.alpha, prior_mean=self.prior_mean)
            dn, dk = n - test.n0, k - test.k0
            ratio = sprt.log_ratio(dn, dk)
            verdict = Verdict(ratio >= sprt.threshold, ratio, sprt.threshold, index, dn, dk)
            if best is None or ratio - sprt.threshold > best.log_ratio - best.threshold:
                best = verdict
        assert best is not None
        return best


@dataclass(frozen=True)
class Decision:
    """One look at the counts: ``hold``, ``suspect`` (a test rejected, awaiting confirmation),
    ``breach`` (confirmed), or ``dismissed`` (not confirmed in time: the tests restarted)."""

    state: str
    verdict: Verdict  # the staggered test that rejected first, or the monitor's best
    confirm: Verdict | None = None  # the test over requests after the suspicion
    recurred: bool = False  # a breach because a suspicion followed a dismissed one closely


@dataclass
class _Suspicion:
    at: float
    n0: int
    k0: int
    verdict: Verdict


class ConfirmedMonitor:
    """A :class:`StaggeredMonitor` whose rejections must be confirmed on fresh requests.

    ``confirm_s == 0`` turns confirmation off: the first rejection is a breach. A suspicion
    raised within ``recur_s`` of a dismissed one is a breach too (0: never).
    ``min_requests``: no test rejects on fewer requests than this (the staggered tests count
    from the bake's start or the last dismissal, the confirming test from the suspicion).
    """

    def __init__(
        self,
        *,
        p0: float,
        alpha: float,
        restart_s: float,
        confirm_s: float,
        min_requests: int = 1,
        recur_s: float = 0.0,
        prior_mean: float | None = None,
    ) -> None:
        if confirm_s < 0:
            raise ValueError("confirm_s must not be negative")
        if recur_s < 0:
            raise ValueError("recur_s must not be negative")
        self.p0, self.alpha, self.restart_s, self.prior_mean = p0, alpha, restart_s, prior_mean
        self.confirm_s, self.min_requests = confirm_s, min_requests
        self._monitor = self._fresh()
        self._since: tuple[int, int] | None = None  # counts when the staggered tests began
        self._suspicion: _Suspicion | None = None
        self._dismissed_at: float | None = None
        self.recur_s = recur_s
        self.dismissed = 0

    @property
    def suspect(self) -> bool:
        return self._suspicion is not None

    def _fresh(self) -> StaggeredMonitor:
        return StaggeredMonitor(
            p0=self.p0, alpha=self.alpha, restart_s=self.restart_s, prior_mean=self.prior_mean
        )

    def update(self, *, n: int, k: int, now: float) -> Decision:
        """``n``/``k``: cumulative requests and violations since the bake began."""
        if self._since is None:
            self._since = (n, k)
        suspicion = self._suspicion
        if suspicion is None:
            verdict = self._monitor.update(n=n, k=k, now=now)
            if not verdict.rejected or n - self._since[0] < self.min_requests:
                return Decision("hold", verdict)
            if self.confirm_s == 0:
                return Decision("breach", verdict)
            if self._dismissed_at is not None and now - self._dismissed_at <= self.recur_s:
                # Clusters that keep coming are a pattern, not a stall: a config running near
                # saturation violates in bursts, each too short to confirm on its own.
                return Decision("breach", verdict, recurred=True)
            self._suspicion = _Suspicion(now, -1, -1, verdict)
            return Decision("suspect", verdict)
        if suspicion.n0 < 0:
            # The requests finishing in the look right after a suspicion belong to the event
            # that raised it (a stall's backlog drains then): the confirming test starts after.
            suspicion.n0, suspicion.k0 = n, k
            return Decision("suspect", suspicion.verdict)
        # The confirming test's alpha is the whole alpha: it is one test on new requests, and
        # a breach needs it *and* the suspicion, so it cannot raise the false-breach rate.
        test = MixtureSPRT(p0=self.p0, alpha=self.alpha, prior_mean=self.prior_mean)
        dn, dk = n - suspicion.n0, k - suspicion.k0
        ratio = test.log_ratio(dn, dk)
        rejected = ratio >= test.threshold and dn >= self.min_requests
        confirm = Verdict(rejected, ratio, test.threshold, 0, dn, dk)
        if rejected:
            return Decision("breach", suspicion.verdict, confirm)
        if now - suspicion.at >= self.confirm_s:
            self._suspicion = None
            self.dismissed += 1
            self._dismissed_at = now
            self._monitor = self._fresh()
            self._since = (n, k)
            self._monitor.update(n=n, k=k, now=now)  # its first test starts here
            return Decision("dismissed", suspicion.verdict, confirm)
        return Decision("suspect", suspicion.verdict, confirm)


def _log_sf(a: float, b: float, x: float) -> float:
    """log P(Beta(a, b) > x), stable when the tail is tiny."""
    tail = float(betaincc(a, b, x))
    if tail > 1e-300:
        return math.log(tail)
    return float(beta_dist.logsf(x, a, b))


def upper_bound(n: int, k: int, *, confidence: float = 0.95) -> float:
    """One-sided Clopper-Pearson upper confidence bound of a rate seen as ``k`` of ``n``."""
    if n <= 0:
        return 1.0
    if k >= n:
        return 1.0
    return float(beta_dist.ppf(confidence, k + 1, n - k))
