"""GPUs as the control plane's NVML collector exports them on its own ``/metrics``:
utilization, memory, temperature, power, clocks, clock-event (throttle) reasons, XID
events and ECC errors. Throttling is read from the clock-event reasons, not from a low SM
clock; XIDs are counted as events (a counter), never a last-value gauge."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import dashboard as model

from dashboards._common import DATASOURCE
from dashboards._common import graph
from dashboards._common import new_dashboard
from dashboards._common import single

UID = "cplane-gpu"
GPU = 'uuid=~"$gpu"'
L = "{{gpu}} {{model}}"


def gpu_variable() -> dash.QueryVariable:
    return (
        dash.QueryVariable("gpu")
        .label("GPU")
        .datasource(DATASOURCE)
        .query("label_values(gpu_utilization_ratio, uuid)")
        .definition("label_values(gpu_utilization_ratio, uuid)")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def build() -> dash.Dashboard:
    return (
        new_dashboard(UID, "Control plane / GPU", __doc__ or "")
        .with_variable(gpu_variable())
        .with_row(dash.Row("Now"))
        .with_panel(
            single(
                "NVML collector",
                "short",
                'max(cplane_gpu_collector_enabled{job!=""})',
                description="1: reading NVML; 0: disabled itself (no driver or no NVML).",
                thresholds=[(None, "red"), (1, "green")],
            )
        )
        .with_panel(
            single(
                "Hottest GPU",
                "celsius",
                f"max(gpu_temperature_celsius{{{GPU}}})",
                thresholds=[(None, "green"), (80, "orange"), (90, "red")],
            )
        )
        .with_panel(
            single(
                "XID events (1h)",
                "short",
                f"sum(increase(gpu_xid_errors_total{{{GPU}}}[1h])) or vector(0)",
                thresholds=[(None, "green"), (1, "red")],
            )
        )
        .with_panel(
            single(
                "Uncorrected ECC (1h)",
                "short",
                f'sum(increase(gpu_ecc_errors_total{{{GPU},type="uncorrected"}}[1h]))',
                thresholds=[(None, "green"), (1, "red")],
            )
        )
        .with_row(dash.Row("Load"))
        .with_panel(
            graph(
                "Utilization",
                "percentunit",
                (f"gpu_utilization_ratio{{{GPU}}}", f"{L} kernel"),
                (f"gpu_memory_utilization_ratio{{{GPU}}}", f"{L} memory"),
                (f"gpu_sm_utilization_ratio{{{GPU}}}", f"{L} SM (GPM)"),
                description="Kernel utilization is coarse (any kernel running); SM "
                "utilization needs GPM (Hopper and newer).",
            )
        )
        .with_panel(
            graph(
                "Memory",
                "bytes",
                (f"gpu_memory_used_bytes{{{GPU}}}", f"{L} used"),
                (f"gpu_memory_total_bytes{{{GPU}}}", f"{L} total"),
                (f"gpu_memory_reserved_bytes{{{GPU}}}", f"{L} reserved"),
            )
        )
        .with_row(dash.Row("Thermals and power"))
        .with_panel(
            graph(
                "Temperature",
                "celsius",
                (f"gpu_temperature_celsius{{{GPU}}}", f"{L} core"),
                (f"gpu_memory_temperature_celsius{{{GPU}}}", f"{L} HBM"),
            )
        )
        .with_panel(
            graph(
                "Power",
                "watt",
                (f"gpu_power_watts{{{GPU}}}", f"{L} draw"),
                (f"gpu_power_limit_watts{{{GPU}}}", f"{L} limit"),
                (f"rate(gpu_energy_joules_total{{{GPU}}}[$__rate_interval])", f"{L} energy/s"),
            )
        )
        .with_panel(
            graph(
                "Clocks",
                "hertz",
                (f"gpu_sm_clock_hertz{{{GPU}}}", f"{L} SM"),
                (f"gpu_memory_clock_hertz{{{GPU}}}", f"{L} memory"),
            )
        )
        .with_panel(
            graph(
                "Clock-event (throttle) reasons",
                "short",
                (
                    f"max by (gpu, model, reason) (gpu_clock_event_active{{{GPU}}})",
                    "{{gpu}} {{reason}}",
                ),
                description="1 while the reason holds the clocks down; gpu_idle is harmless.",
            )
        )
        .with_row(dash.Row("Errors"))
        .with_panel(
            graph(
                "XID events",
                "short",
                (
                    f"sum by (gpu, model, xid) (increase(gpu_xid_errors_total{{{GPU}}}[5m]))",
                    "{{gpu}} XID {{xid}}",
                ),
                description="XID errors seen as NVML events, per 5 minutes.",
            )
        )
        .with_panel(
            graph(
                "ECC errors",
                "short",
                (
                    f"sum by (gpu, model, type) (increase(gpu_ecc_errors_total{{{GPU}}}[5m]))",
                    "{{gpu}} {{type}}",
                ),
                (
                    f"sum by (gpu, model) (gpu_remapped_rows_pending{{{GPU}}})",
                    "{{gpu}} remap pending",
                ),
                (
                    f"sum by (gpu, model) (increase(gpu_pcie_replays_total{{{GPU}}}[5m]))",
                    "{{gpu}} PCIe replays",
                ),
            )
        )
    )
