"""Layer 2: the autotuner (Optuna ask/tell) and the synthetic load generator it measures with.

``start_run`` validates a request and records a pending run; ``Tuner.run`` takes it to its
end (baseline, guarded trials, re-measurement, guarded apply of the best, HTML report);
``sweep_orphaned_runs`` settles runs a crashed process left behind. See docs/tuning.md.
"""

from tuner._measure import CapacityMeasurer
from tuner._measure import LiveMeasurer
from tuner._measure import Measurement
from tuner._measure import Measurer
from tuner._measure import SyntheticMeasurer
from tuner._measure import Window
from tuner._measure import is_stable
from tuner._measure import measure_until_stable
from tuner._objective import Score
from tuner._objective import constraints
from tuner._objective import score
from tuner._report import pareto_front
from tuner._report import report_figures
from tuner._results import TrialRecord
from tuner._run import Switched
from tuner._run import Tuner
from tuner._run import TuningEvent
from tuner._run import report_path
from tuner._sampler import StructuredSampler
from tuner._service import TuningService
from tuner._service import list_trials
from tuner._service import request_stop
from tuner._service import resume_run
from tuner._service import sweep_orphaned_runs
from tuner._space import TuningSpace
from tuner._specs import TuningSpec
from tuner._specs import check_request
from tuner._specs import start_run
from tuner._study import make_sampler
from tuner._study import open_study
from tuner._study import opened_storage
from tuner._study import storage
from tuner._study import storage_url
from tuner._study import study_exists

__all__ = [
    "pareto_front",
    "report_figures",
    "CapacityMeasurer",
    "LiveMeasurer",
    "Measurement",
    "Measurer",
    "Score",
    "StructuredSampler",
    "Switched",
    "SyntheticMeasurer",
    "TrialRecord",
    "Tuner",
    "TuningEvent",
    "TuningService",
    "TuningSpace",
    "TuningSpec",
    "Window",
    "check_request",
    "constraints",
    "is_stable",
    "list_trials",
    "make_sampler",
    "measure_until_stable",
    "open_study",
    "opened_storage",
    "report_path",
    "request_stop",
    "resume_run",
    "score",
    "start_run",
    "storage",
    "storage_url",
    "study_exists",
    "sweep_orphaned_runs",
]
