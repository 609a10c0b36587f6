"""Load tests: the performance-decay curve of an engine (closed-loop concurrency or
open-loop rate sweeps), its knee and saturation point, and a regression gate against a
stored run. Built on the tuner's load generator and its stability rule. See
docs/loadtest.md."""

from tuner.loadtest._analysis import GateVerdict
from tuner.loadtest._analysis import Regression
from tuner.loadtest._analysis import compare
from tuner.loadtest._analysis import knee
from tuner.loadtest._analysis import saturation
from tuner.loadtest._report import PngUnavailableError
from tuner.loadtest._report import write_png
from tuner.loadtest._report import write_report
from tuner.loadtest._run import LoadTester
from tuner.loadtest._run import LoadTestOutcome
from tuner.loadtest._run import LoadTestService
from tuner.loadtest._run import LoadTestSpec
from tuner.loadtest._run import report_path
from tuner.loadtest._run import start_load_test
from tuner.loadtest._run import sweep_orphaned_load_tests
from tuner.loadtest._step import StepFigures
from tuner.loadtest._step import measure_step

__all__ = [
    "GateVerdict",
    "LoadTestOutcome",
    "LoadTestService",
    "LoadTestSpec",
    "LoadTester",
    "PngUnavailableError",
    "Regression",
    "StepFigures",
    "compare",
    "knee",
    "measure_step",
    "report_path",
    "saturation",
    "start_load_test",
    "sweep_orphaned_load_tests",
    "write_png",
    "write_report",
]
