"""A load test drawn: the performance-decay curves in one self-contained HTML file, and the
same curves as a PNG for documents.

Three views, the ones people read a serving deployment by: throughput against offered load
(where it flattens is saturation), p50 / p90 / p99 against offered load with the SLO line
(where p99 crosses it is the knee), and latency against throughput (the cost of each extra
request per second). Plotly's JavaScript is included once, inline, so the file works
offline. The PNG is drawn with matplotlib, which needs no browser (plotly's own image export
needs kaleido and a Chromium).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]

from controlplane.domain import SLO
from tuner.loadtest._step import StepFigures

_LATENCIES = (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"))


def _load_label(kind: str) -> str:
    return "concurrent users" if kind == "concurrency" else "offered rate (req/s)"


def _slo_ms(slos: Sequence[SLO]) -> float | None:
    latency = [s.threshold for s in slos if s.kind == "latency"]
    return min(latency) * 1000.0 if latency else None


def _figures(
    steps: Sequence[StepFigures],
    *,
    kind: str,
    slos: Sequence[SLO],
    knee: StepFigures | None,
    saturation: StepFigures | None,
) -> list[tuple[str, Any]]:
    x = [s.offered for s in steps]
    axis = "log" if kind == "concurrency" and len(x) > 2 and x[-1] / x[0] >= 16 else "linear"
    throughput = go.Figure()
    throughput.add_trace(
        go.Scatter(x=x, y=[s.throughput_rps for s in steps], mode="lines+markers", name="req/s")
    )
    for point, label in ((knee, "knee"), (saturation, "saturation")):
        if point is not None:
            throughput.add_trace(
                go.Scatter(
                    x=[point.offered],
                    y=[point.throughput_rps],
                    mode="markers+text",
                    text=[label],
                    textposition="top center",
                    marker={"size": 14, "symbol": "star" if label == "knee" else "diamond"},
                    name=label,
                )
            )
    throughput.update_layout(
        xaxis_title=_load_label(kind), yaxis_title="throughput (req/s)", xaxis_type=axis
    )
    latency = go.Figure()
    for attr, name in _LATENCIES:
        latency.add_trace(
            go.Scatter(x=x, y=[getattr(s, attr) for s in steps], mode="lines+markers", name=name)
        )
    slo = _slo_ms(slos)
    if slo is not None:
        latency.add_hline(y=slo, line_dash="dash", annotation_text=f"SLO {slo:g} ms")
    latency.update_layout(
        xaxis_title=_load_label(kind), yaxis_title="latency (ms)", xaxis_type=axis
    )
    tradeoff = go.Figure()
    tradeoff.add_trace(
        go.Scatter(
            x=[s.throughput_rps for s in steps],
            y=[s.p99_ms for s in steps],
            mode="lines+markers",
            text=[f"{s.offered:g}" for s in steps],
            name="p99",
        )
    )
    if slo is not None:
        tradeoff.add_hline(y=slo, line_dash="dash", annotation_text=f"SLO {slo:g} ms")
    tradeoff.update_layout(xaxis_title="throughput (req/s)", yaxis_title="p99 latency (ms)")
    return [
        ("Throughput against load", throughput),
        ("Latency against load", latency),
        ("p99 against throughput", tradeoff),
    ]


def _headline(knee: StepFigures | None, saturation: StepFigures | None, kind: str) -> str:
    unit = "users" if kind == "concurrency" else "req/s offered"
    parts = []
    if knee is None:
        parts.append("No step met the SLO: the deployment has no capacity within it.")
    else:
        parts.append(
            f"Capacity within the SLO: <b>{knee.throughput_rps:.1f} req/s</b> "
            f"(knee at {knee.offered:g} {unit}, p99 {knee.p99_ms or 0:.0f} ms)."
        )
    if saturation is None:
        parts.append("Throughput was still rising at the last step: not saturated.")
    else:
        parts.append(
            f"Saturation at {saturation.offered:g} {unit}: "
            f"{saturation.throughput_rps:.1f} req/s, no more from more load."
        )
    return " ".join(parts)


def _table(steps: Sequence[StepFigures]) -> str:
    heads = ("load", "req/s", "tok/s", "p50", "p90", "p99", "TTFT p50", "TPOT", "errors",
             "429", "SLO", "stable")  # fmt: skip

    def ms(v: float | None) -> str:
        return "" if v is None else f"{v:.0f}"

    rows = []
    for s in steps:
        cells = [
            f"{s.offered:g}", f"{s.throughput_rps:.2f}", f"{s.output_tokens_per_s:.1f}",
            ms(s.p50_ms), ms(s.p90_ms), ms(s.p99_ms), ms(s.ttft_p50_ms), ms(s.tpot_ms),
            str(s.errors), str(s.rejected), "yes" if s.meets_slo else "no",
            "yes" if s.stable else "no",
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in heads)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def write_report(
    path: Path,
    *,
    title: str,
    steps: Sequence[StepFigures],
    kind: str,
    slos: Sequence[SLO],
    knee: StepFigures | None,
    saturation: StepFigures | None,
    notes: Sequence[str] = (),
) -> Path:
    """Write the HTML report to ``path`` (parents created) and return it."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{_headline(knee, saturation, kind)}</p>",
        *(f"<p>{html.escape(n)}</p>" for n in notes),
        f"<p>SLO: {html.escape(', '.join(s.spec() for s in slos) or 'none')}</p>",
        "<h2>Steps</h2>",
        _table(steps),
    ]
    first = True
    for heading, fig in _figures(steps, kind=kind, slos=slos, knee=knee, saturation=saturation):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.append(
            pio.to_html(fig, full_html=False, include_plotlyjs="inline" if first else False)
        )
        first = False
    parts.append("</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


class PngUnavailableError(RuntimeError):
    """matplotlib is not installed: the PNG cannot be drawn (the HTML report still is)."""


def write_png(
    path: Path,
    *,
    title: str,
    steps: Sequence[StepFigures],
    kind: str,
    slos: Sequence[SLO],
    knee: StepFigures | None,
    saturation: StepFigures | None,
) -> Path:
    """The decay curves as one PNG (three panels) for documents."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise PngUnavailableError(
            "drawing a PNG needs matplotlib: pip install 'matplotlib>=3.8,<4'"
        ) from exc
    x = [s.offered for s in steps]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(x, [s.throughput_rps for s in steps], marker="o", label="req/s")
    for point, label, marker in ((knee, "knee", "*"), (saturation, "saturation", "D")):
        if point is not None:
            axes[0].plot([point.offered], [point.throughput_rps], marker, ms=14, label=label)
    axes[0].set_xlabel(_load_label(kind))
    axes[0].set_ylabel("throughput (req/s)")
    for attr, name in _LATENCIES:
        values = [getattr(s, attr) for s in steps]
        axes[1].plot(x, [float("nan") if v is None else v for v in values], marker="o", label=name)
    slo = _slo_ms(slos)
    for ax in (axes[1], axes[2]):
        if slo is not None:
            ax.axhline(slo, linestyle="--", color="grey", label=f"SLO {slo:g} ms")
    axes[1].set_xlabel(_load_label(kind))
    axes[1].set_ylabel("latency (ms)")
    axes[2].plot(
        [s.throughput_rps for s in steps],
        [float("nan") if s.p99_ms is None else s.p99_ms for s in steps],
        marker="o",
        label="p99",
    )
    axes[2].set_xlabel("throughput (req/s)")
    axes[2].set_ylabel("p99 latency (ms)")
    if kind == "concurrency" and len(x) > 2 and x[-1] / x[0] >= 16:
        axes[0].set_xscale("log", base=2)
        axes[1].set_xscale("log", base=2)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
