"""Layer 2: metric collectors. Engine ``/metrics`` scrapes, GPU readings through NVML, host
readings through psutil; a bounded sink that writes them to the SQL store in batches (or
pushes them to the control plane in agent mode); the control plane's own ``/metrics``
export; and ``histogram_quantile`` as Prometheus computes it."""

from collectors._agent import Pusher
from collectors._agent import build_agent
from collectors._engine_scraper import EngineScraper
from collectors._engine_scraper import EngineStatus
from collectors._export import CollectorHealth
from collectors._export import LatestSamples
from collectors._fetch import FetchError
from collectors._fetch import fetch_text
from collectors._gpu import GpuCollector
from collectors._host import HostCollector
from collectors._parse import ParseError
from collectors._parse import parse
from collectors._quantiles import histogram_quantile
from collectors._quantiles import increase
from collectors._runtime import CollectorRuntime
from collectors._runtime import sql_writer
from collectors._runtime import store_targets
from collectors._sink import SampleSink

__all__ = [
    "CollectorHealth",
    "CollectorRuntime",
    "EngineScraper",
    "EngineStatus",
    "FetchError",
    "GpuCollector",
    "HostCollector",
    "LatestSamples",
    "ParseError",
    "Pusher",
    "SampleSink",
    "build_agent",
    "fetch_text",
    "histogram_quantile",
    "increase",
    "parse",
    "sql_writer",
    "store_targets",
]
