"""Shared pieces of every dashboard: the Prometheus datasource variable, the engine variable,
and panel helpers, so that each dashboard module reads as a list of queries.

Every panel queries through ``${datasource}`` (never a fixed datasource uid), so a dashboard
imports into any Grafana whose Prometheus scrapes the control plane and its engines. Engine
series carry the ``engine`` target label that the control plane's service discovery sets.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.builders import timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model

DATASOURCE = common.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["cplane", "generated"]

# Engine selector used in every engine query; ``.*`` when "All" is picked.
ENGINE = 'engine=~"$engine"'


def datasource_variable() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def engine_variable() -> dash.QueryVariable:
    """Engines that Prometheus scrapes (the ``engine`` target label), all by default."""
    return (
        dash.QueryVariable("engine")
        .label("Engine")
        .datasource(DATASOURCE)
        .query('label_values(up{engine!=""}, engine)')
        .definition('label_values(up{engine!=""}, engine)')
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def custom_variable(name: str, label: str, values: list[str], default: str) -> dash.CustomVariable:
    return (
        dash.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .current(model.VariableOption(selected=True, text=default, value=default))
    )


def new_dashboard(uid: str, title: str, description: str) -> dash.Dashboard:
    return (
        dash.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh("30s")
        .time("now-1h", "now")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
    )


def query(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    return q


def graph(
    title: str, unit: str, *targets: tuple[str, str], description: str = "", width: int = 12
) -> timeseries.Panel:
    """A time series panel; ``targets`` are (expr, legend) pairs."""
    panel = (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
    )
    if description:
        panel = panel.description(description)
    for i, (expr, legend) in enumerate(targets):
        panel = panel.with_target(query(expr, legend, chr(ord("A") + i)))
    return panel


def single(
    title: str,
    unit: str,
    expr: str,
    *,
    legend: str = "",
    description: str = "",
    width: int = 4,
    thresholds: list[tuple[float | None, str]] | None = None,
) -> stat.Panel:
    """A stat panel (one number per series); ``thresholds`` are (value, colour) steps."""
    panel = (
        stat.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(4)
        .span(width)
        .with_target(query(expr, legend))
    )
    if description:
        panel = panel.description(description)
    if thresholds:
        steps = [model.Threshold(value=v, color=c) for v, c in thresholds]
        panel = panel.thresholds(
            dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)
        )
    return panel


def rate(metric: str, selector: str = ENGINE, by: str = "engine") -> str:
    return f"sum by ({by}) (rate({metric}{{{selector}}}[$__rate_interval]))"


def quantile(q: float, histogram: str, selector: str = ENGINE, by: str = "engine") -> str:
    """``histogram_quantile`` over rates summed per ``le`` first (the only correct order)."""
    return (
        f"histogram_quantile({q}, sum by (le, {by}) "
        f"(rate({histogram}_bucket{{{selector}}}[$__rate_interval])))"
    )
