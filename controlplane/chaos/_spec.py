"""Fault and target specs as typed on a command line, parsed once into plain values.

The grammar follows ``tc-netem(8)`` so an operator who knows netem reads our specs without a
manual; the fallbacks (tbf, nftables, the delaying proxy) take the same values. Parsing never
touches the system: a spec that does not parse fails before anything is applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from typing import Literal

from controlplane.domain import ValidationError

DISTRIBUTIONS = ("uniform", "normal", "pareto", "paretonormal")
NET_KEYWORDS = (
    "delay",
    "distribution",
    "loss",
    "duplicate",
    "corrupt",
    "reorder",
    "rate",
    "limit",
    "partition",
)
PROCESS_KEYWORDS = ("pause", "crash", "cpu-hog")

_TIME = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)?$")
_TIME_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, None: 1.0}
_PCT = re.compile(r"^(\d+(?:\.\d+)?)%?$")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps|gbps)$")
_RATE_UNIT = {
    "bit": 1,
    "kbit": 1_000,
    "mbit": 1_000_000,
    "gbit": 1_000_000_000,
    "bps": 8,
    "kbps": 8_000,
    "mbps": 8_000_000,
    "gbps": 8_000_000_000,
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_IFNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")


@dataclass(frozen=True)
class NetFault:
    """Network impairments; every field maps to one netem option (``None``: not asked for)."""

    delay_ms: float | None = None
    jitter_ms: float | None = None
    delay_corr: float | None = None
    distribution: str | None = None
    loss_pct: float | None = None
    loss_corr: float | None = None
    gemodel: tuple[float, ...] | None = None
    duplicate_pct: float | None = None
    duplicate_corr: float | None = None
    corrupt_pct: float | None = None
    corrupt_corr: float | None = None
    reorder_pct: float | None = None
    reorder_corr: float | None = None
    gap: int | None = None
    rate_bps: int | None = None
    limit: int | None = None
    partition: bool = False
    text: str = ""

    kind: Literal["net"] = field(default="net", init=False)

    def netem_args(self, default_limit: int) -> list[str]:
        """Arguments after ``netem`` in the order ``tc`` prints them back."""
        args = ["limit", str(self.limit or default_limit)]
        if self.delay_ms is not None:
            args += ["delay", _ms(self.delay_ms)]
            if self.jitter_ms is not None:
                args.append(_ms(self.jitter_ms))
                if self.delay_corr is not None:
                    args.append(_pct(self.delay_corr))
            # Uniform is netem's default and has no table file: tc rejects it if named.
            if self.distribution not in (None, "uniform"):
                args += ["distribution", str(self.distribution)]
        if self.partition:
            args += ["loss", "random", "100%"]
        elif self.gemodel is not None:
            args += ["loss", "gemodel", *(_pct(v) for v in self.gemodel)]
        elif self.loss_pct is not None:
            args += ["loss", "random", _pct(self.loss_pct)]
            if self.loss_corr is not None:
                args.append(_pct(self.loss_corr))
        for name, pct, corr in (
            ("duplicate", self.duplicate_pct, self.duplicate_corr),
            ("corrupt", self.corrupt_pct, self.corrupt_corr),
        ):
            if pct is not None:
                args += [name, _pct(pct)]
                if corr is not None:
                    args.append(_pct(corr))
        if self.reorder_pct is not None:
            args += ["reorder", _pct(self.reorder_pct)]
            if self.reorder_corr is not None:
                args.append(_pct(self.reorder_corr))
            if self.gap is not None:
                args += ["gap", str(self.gap)]
        if self.rate_bps is not None:
            args += ["rate", f"{self.rate_bps}bit"]
        return args

    @property
    def drops(self) -> bool:
        return self.partition or self.loss_pct is not None or self.gemodel is not None

    def needs_netem(self) -> list[str]:
        """Options that only ``sch_netem`` can provide (no fallback exists for them)."""
        missing = []
        if self.gemodel is not None:
            missing.append("loss gemodel")
        if self.loss_corr is not None:
            missing.append("loss correlation")
        if self.duplicate_pct is not None:
            missing.append("duplicate")
        if self.corrupt_pct is not None:
            missing.append("corrupt")
        if self.reorder_pct is not None:
            missing.append("reorder")
        if self.delay_corr is not None:
            missing.append("delay correlation")
        if self.distribution in ("pareto", "paretonormal"):
            missing.append(f"distribution {self.distribution}")
        return missing


@dataclass(frozen=True)
class ProcessFault:
    """A fault on a process: stop it, kill it, or burn CPU beside it."""

    action: Literal["pause", "crash", "cpu-hog"]
    workers: int = 1
    text: str = ""

    kind: Literal["process"] = field(default="process", init=False)


Fault = NetFault | ProcessFault


@dataclass(frozen=True)
class Target:
    """Where a fault lands: a device in a network namespace, a host interface, or a process."""

    kind: Literal["netns", "host", "pid"]
    netns: str | None = None
    device: str | None = None
    port: int | None = None
    pid: int | None = None

    def __str__(self) -> str:
        if self.kind == "pid":
            return f"pid:{self.pid}"
        where = self.netns if self.kind == "netns" else self.device
        if self.kind == "netns" and self.device:
            where = f"{self.netns}/{self.device}"
        return f"{self.kind}:{where}" + (f":{self.port}" if self.port else "")


def check_netns_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValidationError(
            f"target: {name!r} is not a namespace name (letters, digits, '_', '.', '-')",
            field="target",
        )
    return name


def check_ifname(name: str) -> str:
    if not _IFNAME.match(name):
        raise ValidationError(
            f"target: {name!r} is not an interface name (at most 15 of [A-Za-z0-9_.-])",
            field="target",
        )
    return name


PID_MAX = 2**31 - 1  # pid_t is a signed 32-bit integer


def _digits(text: str) -> bool:
    """ASCII digits only: ``str.isdigit`` also accepts ``"²"``, which ``int`` refuses."""
    return text.isascii() and text.isdigit()


def parse_target(text: str) -> Target:
    """``netns:NAME[/DEV][:PORT]``, ``host:IFACE[:PORT]`` or ``pid:PID``.

    Raises:
        ValidationError: the text names none of these.
    """
    kind, sep, rest = text.strip().partition(":")
    if not sep or not rest:
        raise ValidationError(
            f"target: {text!r} is not netns:NAME[/DEV][:PORT], host:IFACE[:PORT] or pid:PID",
            field="target",
        )
    if kind == "pid":
        if not _digits(rest) or not 1 < int(rest) <= PID_MAX:
            raise ValidationError(f"target: {rest!r} is not a process id", field="target")
        return Target(kind="pid", pid=int(rest))
    where, _, port_text = rest.partition(":")
    port = None
    if port_text:
        if not _digits(port_text) or not 1 <= int(port_text) <= 65535:
            raise ValidationError(f"target: port {port_text!r} is not 1-65535", field="target")
        port = int(port_text)
    if kind == "netns":
        name, _, device = where.partition("/")
        return Target(
            kind="netns",
            netns=check_netns_name(name),
            device=check_ifname(device) if device else None,
            port=port,
        )
    if kind == "host":
        return Target(kind="host", device=check_ifname(where), port=port)
    raise ValidationError(f"target: kind {kind!r} is not one of netns, host, pid", field="target")


def parse_fault(text: str) -> Fault:
    """Parse ``'delay 50ms 10ms 25% distribution normal loss 1%'``, ``'pause'``, ``'cpu-hog 2'``.

    Raises:
        ValidationError: the spec does not parse, or its values are out of range.
    """
    tokens = text.split()
    if not tokens:
        raise ValidationError("fault: empty spec", field="fault")
    if tokens[0] in PROCESS_KEYWORDS:
        return _process(tokens, text)
    p = _Parser(tokens)
    values: dict[str, object] = {}
    seen: set[str] = set()
    while p.more():
        word = p.take()
        if word in seen:
            raise _bad(f"{word!r} given twice")
        seen.add(word)
        if word == "delay":
            values["delay_ms"] = _time(p.take("delay needs a time, e.g. 50ms"))
            if p.peek_is(_TIME):
                values["jitter_ms"] = _time(p.take())
                if p.peek_is(_PCT) and p.peek_has_pct():
                    values["delay_corr"] = _percent(p.take())
        elif word == "distribution":
            dist = p.take("distribution needs one of " + ", ".join(DISTRIBUTIONS))
            if dist not in DISTRIBUTIONS:
                raise _bad(f"distribution {dist!r} is not one of {', '.join(DISTRIBUTIONS)}")
            values["distribution"] = dist
        elif word == "loss":
            model = p.peek()
            if model == "gemodel":
                p.take()
                nums = [_percent(p.take("loss gemodel needs a percent"))]
                while len(nums) < 4 and p.peek_is(_PCT):
                    nums.append(_percent(p.take()))
                values["gemodel"] = tuple(nums)
                continue
            if model == "random":
                p.take()
            values["loss_pct"] = _percent(p.take("loss needs a percent, e.g. 1%"))
            if p.peek_is(_PCT) and p.peek_has_pct():
                values["loss_corr"] = _percent(p.take())
        elif word in ("duplicate", "corrupt"):
            values[f"{word}_pct"] = _percent(p.take(f"{word} needs a percent"))
            if p.peek_is(_PCT) and p.peek_has_pct():
                values[f"{word}_corr"] = _percent(p.take())
        elif word == "reorder":
            values["reorder_pct"] = _percent(p.take("reorder needs a percent"))
            if p.peek_is(_PCT) and p.peek_has_pct():
                values["reorder_corr"] = _percent(p.take())
            if p.peek() == "gap":
                p.take()
                values["gap"] = _int(p.take("gap needs a distance"), "gap")
        elif word == "rate":
            values["rate_bps"] = _rate(p.take("rate needs a rate, e.g. 1mbit"))
        elif word == "limit":
            values["limit"] = _int(p.take("limit needs a packet count"), "limit")
        elif word == "partition":
            values["partition"] = True
        else:
            raise _bad(f"unknown word {word!r}; expected one of {', '.join(NET_KEYWORDS)}")
    if "reorder_pct" in values and "delay_ms" not in values:
        raise _bad("reorder needs a delay (netem reorders by sending some packets at once)")
    if ("jitter_ms" in values or "distribution" in values) and "delay_ms" not in values:
        raise _bad("jitter and distribution need a delay")
    if values.get("partition") and ("loss_pct" in values or "gemodel" in values):
        raise _bad("partition already drops everything: drop the loss")
    return NetFault(text=" ".join(tokens), **values)  # type: ignore[arg-type]


def _process(tokens: list[str], text: str) -> ProcessFault:
    action = tokens[0]
    if action == "cpu-hog":
        if len(tokens) > 2:
            raise _bad("cpu-hog takes one number, the busy workers")
        workers = _int(tokens[1], "cpu-hog") if len(tokens) == 2 else 1
        if not 1 <= workers <= 64:
            raise _bad("cpu-hog workers must be 1-64")
        return ProcessFault(action="cpu-hog", workers=workers, text=" ".join(tokens))
    if len(tokens) > 1:
        raise _bad(f"{action} takes no arguments and cannot be mixed with network faults")
    return ProcessFault(action=action, text=action)  # type: ignore[arg-type]


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.tokens)

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.more() else None

    def peek_is(self, pattern: re.Pattern[str]) -> bool:
        word = self.peek()
        return word is not None and pattern.match(word) is not None

    def peek_has_pct(self) -> bool:
        # A bare number after a percent would be ambiguous with the next keyword's value;
        # correlations must carry their '%'.
        word = self.peek()
        return word is not None and word.endswith("%")

    def take(self, missing: str = "spec ends too early") -> str:
        if not self.more():
            raise _bad(missing)
        word = self.tokens[self.i]
        self.i += 1
        return word


def _bad(reason: str) -> ValidationError:
    return ValidationError(f"fault: {reason}", field="fault")


def _time(word: str) -> float:
    match = _TIME.match(word)
    if match is None:
        raise _bad(f"{word!r} is not a time like 50ms, 500us or 1s")
    return float(match[1]) * _TIME_UNIT_MS[match[2]]


def _percent(word: str) -> float:
    match = _PCT.match(word)
    if match is None or float(match[1]) > 100:
        raise _bad(f"{word!r} is not a percentage 0-100 like 1% or 0.1%")
    return float(match[1])


def _rate(word: str) -> int:
    match = _RATE.match(word)
    if match is None:
        raise _bad(f"{word!r} is not a rate like 1mbit, 500kbit or 2mbps")
    bps = int(float(match[1]) * _RATE_UNIT[match[2]])
    if bps < 8000:
        raise _bad(f"rate {word!r} is below 8kbit")
    return bps


def _int(word: str, what: str) -> int:
    if not _digits(word) or int(word) < 1:
        raise _bad(f"{what}: {word!r} is not a positive whole number")
    return int(word)


def _ms(value: float) -> str:
    return f"{value:g}ms"


def _pct(value: float) -> str:
    return f"{value:g}%"
