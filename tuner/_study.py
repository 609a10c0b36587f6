"""Optuna studies in the control plane's own database, driven by ask / tell only.

Studies live in the SQL store through Optuna's RDB storage (its tables beside ours, its
Alembic history in its own version table), so ``optuna.load_study`` and optuna-dashboard
open them with the store's URL. The sampler is built from the run's spec (seeded, so a
study can be re-run), and the run's space and seed are stored with the study.

Optuna's heartbeat only runs inside ``Study.optimize``; with ask / tell it does nothing
(optuna#3293). The tuner keeps its own lease on the tuning run row instead, and
:func:`fail_orphaned_trials` marks the RUNNING trials of a run whose lease went stale as
FAIL, so a crashed control plane never leaves a study with a trial forever "running".
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import optuna
from sqlalchemy import Engine
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from controlplane.schemas.tuning import Objective
from controlplane.schemas.tuning import SamplerName
from tuner._objective import directions
from tuner._sampler import StructuredSampler
from tuner._space import TuningSpace


def storage_url(engine: Engine) -> str:
    """The store's URL with its password: Optuna opens its own connections to it."""
    return engine.url.render_as_string(hide_password=False)


def study_exists(engine: Engine, study_name: str) -> bool:
    """Whether Optuna has created this study, read without opening an Optuna storage.

    Opening one creates Optuna's tables when they are missing; a reader doing that while the
    tuner creates them for a new run makes one of the two fail on SQLite. A study row is
    written only after the tables are complete, so a reader that sees it may open one."""
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM studies WHERE study_name = :name"), {"name": study_name}
            ).first()
    except DBAPIError:
        return False
    return found is not None


def storage(url: str) -> optuna.storages.RDBStorage:
    """RDB storage on the store. SQLite gets a busy timeout: the guard's heartbeats and the
    collectors write to the same file while a trial is told."""
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


@contextmanager
def opened_storage(url: str) -> Iterator[optuna.storages.RDBStorage]:
    """A storage whose connections are closed afterwards: Optuna keeps its own engine (and
    pool) per storage object, and a server that opened one per request would leak them."""
    opened = storage(url)
    try:
        yield opened
    finally:
        opened.engine.dispose()


def startup_trials(budget: int) -> int:
    """Random trials before the model-based samplers take over: a quarter of the budget,
    3 to 10. Optuna's default of 10 would spend most of a 15-trial budget at random."""
    return max(3, min(10, budget // 4))


def make_sampler(
    name: SamplerName,
    *,
    space: TuningSpace,
    seed: int | None,
    budget: int,
    objective: Objective = "goodput",
) -> optuna.samplers.BaseSampler:
    """The run's sampler. ``auto`` is the tuner's :class:`StructuredSampler` for one
    objective (chosen by measurement, docs/tuning.md) and TPE (MOTPE) for ``pareto``; the
    named Optuna samplers stay available for comparison and for spaces without order."""
    if name == "auto":
        if objective != "pareto":
            return StructuredSampler(space, budget=budget, seed=seed)
        name = "tpe"
    n_startup = startup_trials(budget)
    with warnings.catch_warnings():
        # Only Optuna's experimental-feature notices; anything else still surfaces.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, n_startup_trials=n_startup
            )
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup)
        if name == "grid":
            return optuna.samplers.GridSampler(space.grid(), seed=seed)
        return optuna.samplers.RandomSampler(seed=seed)


def open_study(
    *,
    storage: optuna.storages.RDBStorage,
    study_name: str,
    objective: Objective,
    sampler: optuna.samplers.BaseSampler,
) -> optuna.Study:
    """Create the study, or load it to resume (same name, same directions)."""
    return optuna.create_study(
        storage=storage,
        study_name=study_name,
        sampler=sampler,
        directions=directions(objective),
        load_if_exists=True,
    )


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Tell every RUNNING trial of ``study`` FAIL; returns their numbers (the run's result
    records why)."""
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        failed.append(trial.number)
    return failed
