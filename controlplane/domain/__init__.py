"""Plain typed values shared by every layer: no I/O, no ORM, no framework."""

from controlplane.domain.chaos import ChaosState
from controlplane.domain.config import ConfigValue
from controlplane.domain.config import EngineConfig
from controlplane.domain.config import Knob
from controlplane.domain.config import SearchSpace
from controlplane.domain.engines import EngineTarget
from controlplane.domain.engines import Health
from controlplane.domain.engines import MetricMap
from controlplane.domain.engines import MetricSource
from controlplane.domain.engines import Series
from controlplane.domain.errors import ConflictError
from controlplane.domain.errors import DomainError
from controlplane.domain.errors import EngineRejectedError
from controlplane.domain.errors import EngineUnreachableError
from controlplane.domain.errors import IllegalTransitionError
from controlplane.domain.errors import NotFoundError
from controlplane.domain.errors import PermissionDeniedError
from controlplane.domain.errors import SchemaOutdatedError
from controlplane.domain.errors import SecretKeyError
from controlplane.domain.errors import StoreUnavailableError
from controlplane.domain.errors import UnauthenticatedError
from controlplane.domain.errors import ValidationError
from controlplane.domain.lifecycle import Lifecycle
from controlplane.domain.loadtest import LoadTestState
from controlplane.domain.redact import redact_url
from controlplane.domain.redact import redact_urls_in
from controlplane.domain.roles import Role
from controlplane.domain.rollouts import RolloutState
from controlplane.domain.samples import Labels
from controlplane.domain.samples import Sample
from controlplane.domain.samples import canonical_labels
from controlplane.domain.samples import labels_of
from controlplane.domain.scheduler import Fence
from controlplane.domain.scheduler import FencedOutError
from controlplane.domain.scheduler import JobRunState
from controlplane.domain.scheduler import JobScope
from controlplane.domain.slo import SLO
from controlplane.domain.slo import parse_slo
from controlplane.domain.tuning import TuningRunState

__all__ = [
    "ChaosState",
    "ConfigValue",
    "EngineConfig",
    "Knob",
    "SearchSpace",
    "ConflictError",
    "DomainError",
    "EngineRejectedError",
    "EngineTarget",
    "EngineUnreachableError",
    "Fence",
    "FencedOutError",
    "Health",
    "IllegalTransitionError",
    "JobRunState",
    "JobScope",
    "Lifecycle",
    "LoadTestState",
    "MetricMap",
    "MetricSource",
    "Series",
    "NotFoundError",
    "PermissionDeniedError",
    "Role",
    "RolloutState",
    "TuningRunState",
    "SLO",
    "SchemaOutdatedError",
    "SecretKeyError",
    "StoreUnavailableError",
    "UnauthenticatedError",
    "ValidationError",
    "parse_slo",
    "redact_url",
    "redact_urls_in",
    "Labels",
    "Sample",
    "canonical_labels",
    "labels_of",
]
