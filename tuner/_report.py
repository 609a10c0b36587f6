"""The run's report: one self-contained HTML file an operator can open or attach.

A trial table (with feasibility, so "why was this rejected" has an answer), Optuna's
optimization history and parameter importance, and the throughput-vs-p99 scatter with the
SLO line, which is how people read a serving config's trade-off. Plotly's JavaScript is
included once, inline, so the file works offline; no image export (no browser needed).
"""

from __future__ import annotations

import html
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import plotly.graph_objects as go  # type: ignore[import-untyped]
import plotly.io as pio  # type: ignore[import-untyped]

from controlplane.domain import SLO


def report_figures(study: optuna.Study, slos: Sequence[SLO]) -> list[tuple[str, Any]]:
    """The report's plots as Plotly figures (or a sentence saying why one is missing): the
    HTML report embeds them, the web UI's tuning page draws them from their JSON."""
    figures: list[tuple[str, Any]] = []
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    with warnings.catch_warnings():
        # Optuna marks some plots experimental; the report is not the place to fail on that.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if complete:
            target = None if len(study.directions) == 1 else (lambda t: t.values[0])
            name = None if target is None else "throughput (req/s)"
            kwargs: dict[str, Any] = (
                {} if target is None else {"target": target, "target_name": name}
            )
            figures.append(
                (
                    "Optimization history",
                    optuna.visualization.plot_optimization_history(study, **kwargs),
                )
            )
        distinct = {json.dumps(t.params, sort_keys=True, default=str) for t in complete}
        if len(complete) >= 3 and len(distinct) >= 2 and len(study.directions) == 1:
            try:
                figures.append(
                    ("Parameter importance", optuna.visualization.plot_param_importances(study))
                )
            except (ValueError, RuntimeError, ZeroDivisionError) as exc:
                figures.append(("Parameter importance", f"not available: {exc}"))
    figures.append(("Throughput vs p99", _tradeoff(complete, slos)))
    return figures


def _tradeoff(trials: Sequence[optuna.trial.FrozenTrial], slos: Sequence[SLO]) -> Any:
    fig = go.Figure()
    for feasible in (True, False):
        points = [
            t
            for t in trials
            if isinstance(t.user_attrs.get("measurement"), dict)
            and (all(v <= 0 for v in t.constraints.values()) is feasible)
        ]
        fig.add_trace(
            go.Scatter(
                x=[t.user_attrs["measurement"].get("p99_s", 0) * 1000 for t in points],
                y=[t.user_attrs["measurement"].get("throughput") for t in points],
                mode="markers",
                name="feasible" if feasible else "infeasible",
                text=[f"#{t.number} {t.params}" for t in points],
                marker={"symbol": "circle" if feasible else "x", "size": 9},
            )
        )
    front = pareto_front(
        [
            (
                t.user_attrs["measurement"].get("p99_s", 0) * 1000,
                t.user_attrs["measurement"].get("throughput"),
            )
            for t in trials
            if isinstance(t.user_attrs.get("measurement"), dict)
            and all(v <= 0 for v in t.constraints.values())
        ]
    )
    if front:
        fig.add_trace(
            go.Scatter(
                x=[p for p, _ in front],
                y=[q for _, q in front],
                mode="lines",
                line={"shape": "hv", "dash": "dot"},
                name="Pareto front (feasible)",
            )
        )
    for slo in slos:
        if slo.kind == "latency":
            fig.add_vline(x=slo.threshold * 1000, line_dash="dash", annotation_text=slo.spec())
    fig.update_layout(xaxis_title="p99 latency (ms)", yaxis_title="throughput (req/s)")
    return fig


def pareto_front(points: Sequence[tuple[float, float | None]]) -> list[tuple[float, float]]:
    """(p99, throughput) points no other point beats on both (lower p99, higher throughput),
    by p99 ascending."""
    front: list[tuple[float, float]] = []
    best = float("-inf")
    for p99, throughput in sorted((p, q) for p, q in points if q is not None):
        if throughput > best:
            front.append((p99, throughput))
            best = throughput
    return front


def _table(study: optuna.Study) -> str:
    rows = []
    for t in study.get_trials(deepcopy=False):
        feasible = (
            ""
            if not t.constraints
            else ("yes" if all(v <= 0 for v in t.constraints.values()) else "no")
        )
        values = "" if t.values is None else ", ".join(f"{v:.2f}" for v in t.values)
        cells = [
            str(t.number),
            str(t.user_attrs.get("kind", "")),
            t.state.name,
            json.dumps(t.params, default=str),
            values,
            feasible,
            str(t.user_attrs.get("rollout_id", "")),
            _quality(t.user_attrs.get("quality")),
            str(t.user_attrs.get("error") or t.user_attrs.get("breach") or ""),
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "#",
            "kind",
            "state",
            "params",
            "values",
            "feasible",
            "rollout",
            "quality",
            "note",
        )
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _quality(probed: Any) -> str:
    """The probe's verdict of a trial whose change it judged (``agreement 0.94, 3
    diverged: failed quality>=0.98``); empty when the change was not probed."""
    if not isinstance(probed, dict):
        return ""
    verdict = "held" if probed.get("passed") else "failed"
    return (
        f"agreement {probed.get('agreement')}, exact {probed.get('exact')}, kl "
        f"{probed.get('kl')}, {probed.get('diverged')} diverged: {verdict} {probed.get('spec')}"
    )


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) else html.escape(str(value))


def _interval(r: dict[str, Any]) -> str:
    ci = r.get("ci")
    span = f" (95 % CI {ci[0]:.2f} to {ci[1]:.2f})" if ci else ""
    return f"{r['mean']:.2f}{span}, n={r['n']}"


def answer(summary: dict[str, Any]) -> str:
    """The first thing the report says: what to run, how much better, and how sure."""
    best = summary.get("best")
    if not best:
        note = summary.get("note") or summary.get("error") or "no feasible config found"
        return f"<p><b>No better config.</b> {html.escape(str(note))}</p>"
    params: dict[str, Any] = best["params"]
    default: dict[str, Any] = summary.get("default_config") or {}
    heads = "".join(f"<th>{html.escape(k)}</th>" for k in params)
    row_best = "".join(f"<td><b>{html.escape(str(v))}</b></td>" for v in params.values())
    row_default = "".join(f"<td>{html.escape(str(default.get(k, '')))}</td>" for k in params)
    parts = [
        "<table><thead><tr><th></th>" + heads + "<th>objective</th></tr></thead><tbody>",
    ]
    remeasured = summary.get("remeasured") or {}
    objective = html.escape(str(summary.get("objective", "")))
    if remeasured:
        parts.append(
            f"<tr><td>best</td>{row_best}<td>{_interval(remeasured['best'])}</td></tr>"
            f"<tr><td>default</td>{row_default}<td>{_interval(remeasured['default'])}</td></tr>"
        )
    else:
        values = ", ".join(_fmt(v) for v in best.get("values", []))
        parts.append(f"<tr><td>best</td>{row_best}<td>{values}</td></tr>")
        parts.append(f"<tr><td>default</td>{row_default}<td></td></tr>")
    parts.append("</tbody></table>")
    lines = [f"<p>Objective: {objective}."]
    if summary.get("headline"):
        lines.append(f" <b>{html.escape(str(summary['headline']))}</b>.")
    elif summary.get("improvement"):
        lines.append(f" <b>{summary['improvement']:.2f}x</b> the default.")
    sig = summary.get("significance") or {}
    if sig.get("significant") is True:
        lines.append(f" The difference is significant (Welch's t-test p = {sig['p_value']:.3g}).")
    elif sig.get("significant") is False:
        lines.append(
            f" <b>The difference is not significant</b> (Welch's t-test p = "
            f"{sig['p_value']:.3g}): measure longer or with more repeats before relying on it."
        )
    if sig.get("ci_overlap"):
        lines.append(" The two confidence intervals overlap.")
    if summary.get("applied"):
        lines.append(f" Applied through the guard: {html.escape(str(summary['applied']))}.")
    elif summary.get("note"):
        lines.append(f" {html.escape(str(summary['note']))}")
    lines.append("</p>")
    return "".join(parts) + "".join(lines)


def write_report(
    path: Path, *, study: optuna.Study, slos: Sequence[SLO], summary: dict[str, Any]
) -> Path:
    """Write the HTML report for ``study`` to ``path`` (parents created) and return it."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>Tuning report: {html.escape(study.study_name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 6px;font-size:13px}</style></head><body>",
        f"<h1>Tuning report: {html.escape(study.study_name)}</h1>",
        answer(summary),
        "<h2>Trials</h2>",
        _table(study),
    ]
    first = True
    for title, fig in report_figures(study, slos):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if isinstance(fig, str):
            parts.append(f"<p>{html.escape(fig)}</p>")
            continue
        parts.append(
            pio.to_html(fig, full_html=False, include_plotlyjs="inline" if first else False)
        )
        first = False
    parts.append("<details><summary>The run's summary as JSON</summary><pre>")
    parts.append(html.escape(json.dumps(summary, indent=2, default=str)))
    parts.append("</pre></details></body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
