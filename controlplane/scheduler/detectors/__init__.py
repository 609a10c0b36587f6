"""The control plane's own QPS-swing and memory-leak detectors (a leader job over the SQL
store), for installations without Prometheus; they raise alerts of source ``detector``."""

from controlplane.scheduler.detectors._analysis import LeakVerdict
from controlplane.scheduler.detectors._analysis import QpsVerdict
from controlplane.scheduler.detectors._analysis import leak
from controlplane.scheduler.detectors._analysis import qps_swing
from controlplane.scheduler.detectors._source import DetectorSource
from controlplane.scheduler.detectors._source import judge

__all__ = ["DetectorSource", "LeakVerdict", "QpsVerdict", "judge", "leak", "qps_swing"]
