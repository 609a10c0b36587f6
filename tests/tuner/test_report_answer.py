"""Results a person reads at a glance: the report opens with the answer (best config as a
row beside the default, objective with confidence intervals, ratio, significance), and the
CLI's trial table has one column per knob."""

from __future__ import annotations

from rich.console import Console

from controlplane.cli.tune import trial_table
from tuner import TrialRecord
from tuner._report import answer
from tuner._results import mean_ci
from tuner._results import significance


def _summary(best: list[float], default: list[float]) -> dict[str, object]:
    remeasured = {"best": mean_ci(best), "default": mean_ci(default)}
    return {
        "objective": "goodput",
        "best": {"params": {"max_batch_size": 16, "streams": 2}, "values": [33.1]},
        "default_config": {"max_batch_size": 4, "streams": 1, "precision": "fp32"},
        "remeasured": remeasured,
        "significance": significance(remeasured["best"], remeasured["default"]),
        "improvement": remeasured["best"]["mean"] / remeasured["default"]["mean"],
    }


def test_overlapping_intervals_are_said_aloud() -> None:
    # The run the issue describes: default 28.1 (CI 25.9-30.3), best 33.1 (CI 28.4-37.9).
    summary = _summary([31.2, 33.1, 35.0], [27.2, 28.1, 29.0])
    remeasured = summary["remeasured"]
    assert isinstance(remeasured, dict)
    assert [round(v, 1) for v in remeasured["best"]["ci"]] == [28.4, 37.8]
    assert [round(v, 1) for v in remeasured["default"]["ci"]] == [25.9, 30.3]
    page = answer(summary)
    # Overlapping intervals, and still a difference Welch's test finds (p = 0.029).
    assert "The two confidence intervals overlap" in page
    assert "significant (Welch's t-test p = 0.0285)" in page
    assert page.index("<td><b>16</b></td>") < page.index("<td>4</td>")
    assert "95 % CI 28.38 to 37.82" in page and "1.18x" in page
    noisy = answer(_summary([29.0, 33.1, 37.2], [26.0, 28.1, 30.2]))
    assert "not significant" in noisy and "overlap" in noisy


def test_a_clear_difference_is_called_significant() -> None:
    page = answer(_summary([40.0, 41.0, 40.5], [20.0, 20.5, 21.0]))
    assert "significant (Welch" in page and "overlap" not in page


def test_no_best_says_why() -> None:
    assert "no feasible config" in answer({"best": None, "note": "no feasible config found"})


def test_the_trial_table_has_one_column_per_knob() -> None:
    records = [
        TrialRecord(0, "baseline", {"max_batch_size": 4, "streams": 1}, "feasible", (28.1,),
                    goodput=28.1, p99_ms=210.0),
        TrialRecord(1, "trial", {"max_batch_size": 16, "streams": 2}, "feasible", (33.1,),
                    goodput=33.1, p99_ms=180.0),
    ]  # fmt: skip
    console = Console(width=80, record=True)
    console.print(trial_table(records))
    lines = console.export_text().splitlines()
    assert "max_batch_size" in lines[0] and "streams" in lines[0]
    assert len(lines) == 3  # a header and one line per trial
