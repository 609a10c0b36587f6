"""The process adapter on the reference engine started as a command-line process, behind a
real HAProxy: the same code path a vLLM would take (only the preset's flag names differ)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import ValidationError
from controlplane.engines import adapter_for
from controlplane.engines.base import EngineAdapter
from controlplane.engines.base import ReplicatedEngine
from controlplane.engines.process import ProcessAdapter
from controlplane.engines.process import ProcessSpec
from controlplane.engines.process import Supervisor
from controlplane.engines.process import running
from controlplane.engines.process.control import ControlServer
from controlplane.engines.process.presets import preset_for
from tests.controlplane.engines.contract import EngineAdapterContract
from tests.fixtures.engines import ENGINE_BIN
from tests.fixtures.engines import requires_haproxy
from tuner.loadgen import LoadResult
from tuner.loadgen import LoadSpec
from tuner.loadgen import RequestShape
from tuner.loadgen import run_load_sync

pytestmark = [pytest.mark.slow, requires_haproxy]

COMMAND = (ENGINE_BIN, "serve", "--model", "tiny")


TOKEN = "control-token-0123456789"


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    spec = ProcessSpec(name="proc", preset="reference", command=COMMAND)
    sup = Supervisor(spec, tmp_path_factory.mktemp("proc"))
    sup.start()
    control = ControlServer(sup, token=TOKEN)
    control.start()
    running.register(sup)
    yield sup
    running.unregister(spec.name)
    control.stop()
    sup.stop()


@pytest.fixture
def adapter(supervisor: Supervisor) -> Iterator[EngineAdapter]:
    adapter = adapter_for(EngineTarget(name="proc", kind="process", url=supervisor.url))
    yield adapter
    adapter.close()


@pytest.fixture
def send_request(supervisor: Supervisor) -> Callable[[], None]:
    def send() -> None:
        response = httpx.post(
            f"{supervisor.url}/v1/completions",
            json={"model": "tiny", "prompt": "hello", "max_tokens": 4},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    return send


class TestProcessAdapter(EngineAdapterContract):
    pass


def test_registry_builds_the_process_adapter(adapter: EngineAdapter) -> None:
    assert isinstance(adapter, ProcessAdapter)


def test_an_engine_without_a_supervisor_here_is_refused() -> None:
    with pytest.raises(ValidationError, match="no supervisor runs it"):
        adapter_for(EngineTarget(name="elsewhere", kind="process", url="http://127.0.0.1:1"))


def test_a_supervisor_on_another_node_is_driven_through_its_control_api(
    supervisor: Supervisor, send_request: Callable[[], None]
) -> None:
    # Not registered in this process under this name: the adapter goes over HTTP, through
    # the engine's own proxy, with the engine's admin token.
    target = EngineTarget(name="remote", kind="process", url=supervisor.url, admin_token=TOKEN)
    adapter = adapter_for(target)
    try:
        assert isinstance(adapter, ReplicatedEngine) and adapter.replica_count == 1
        before = adapter.current_config()
        assert before == supervisor.config(0)
        target_batch = 2 if before["max_batch_size"] != 2 else 4
        served = adapter.apply({"max_batch_size": target_batch})
        assert served["max_batch_size"] == supervisor.config(0)["max_batch_size"] == target_batch
        send_request()
        with pytest.raises(ValidationError):
            adapter.apply({"max_batch_size": 0})
        assert adapter.set_traffic_share(0, None) == 1.0
        assert adapter.replica_metrics_url(0) == f"{supervisor.replica_url(0)}/metrics"
    finally:
        adapter.close()


def test_the_control_api_refuses_a_wrong_token(supervisor: Supervisor) -> None:
    before = supervisor.config(0)
    response = httpx.put(
        f"{supervisor.url}/admin/config",
        json={"changes": {"max_batch_size": 16}},
        headers={"Authorization": "Bearer wrong-token-0123456789"},
    )
    assert response.status_code == 401
    target = EngineTarget(name="remote", kind="process", url=supervisor.url, admin_token="nope")
    with pytest.raises(EngineUnreachableError, match="HTTP 401"):
        adapter_for(target)
    assert supervisor.config(0) == before


def _load(url: str, seconds: float) -> LoadSpec:
    # Open-loop arrivals, as real users send them (they keep coming during a switch); light
    # enough that the new process's start-up is not starved of the machine's cores.
    return LoadSpec(
        base_url=url,
        model="tiny",
        mode="poisson",
        rate=10.0,
        duration_s=seconds,
        shapes=(RequestShape(prompt_len=16, max_tokens=8),),
        timeout_s=30.0,
    )


def test_switches_under_load_fail_no_request(supervisor: Supervisor) -> None:
    """Six switches here (each starts an engine process); bench/engines counts twenty."""
    results: list[LoadResult] = []
    stop_after = threading.Event()

    def load() -> None:
        while not stop_after.is_set():
            results.append(run_load_sync(_load(supervisor.url, 5.0)))

    loader = threading.Thread(target=load)
    loader.start()
    try:
        for i in range(6):
            served = supervisor.apply({"max_batch_size": 4 if i % 2 == 0 else 8})
            assert served["max_batch_size"] == (4 if i % 2 == 0 else 8)
    finally:
        stop_after.set()
        loader.join()
    sent = sum(r.sent for r in results)
    failures = [rec.error for r in results for rec in r.records if rec.status != "ok"]
    assert sent > 12, sent  # the load really ran through the switches
    assert failures == []


def test_a_process_that_exits_at_start_leaves_the_old_one_serving(
    supervisor: Supervisor, send_request: Callable[[], None]
) -> None:
    before = supervisor.config(0)
    spec = supervisor.spec
    # The same supervisor, its engine command now broken (an unknown model).
    supervisor.spec = replace(spec, command=(ENGINE_BIN, "serve", "--model", "no-such-model"))
    try:
        with pytest.raises(EngineRejectedError, match="exited with status 2") as info:
            supervisor.apply({"max_batch_size": 16})
        assert "no-such-model" in str(info.value)  # the engine's own one-line reason
    finally:
        supervisor.spec = spec
    assert supervisor.config(0) == before
    send_request()


def test_a_process_that_never_becomes_healthy_is_stopped_in_time(
    supervisor: Supervisor, send_request: Callable[[], None]
) -> None:
    before = supervisor.config(0)
    spec = supervisor.spec
    hangs = (sys.executable, "-c", "import time; time.sleep(120)")
    supervisor.spec = replace(spec, command=hangs, startup_timeout_s=1.0)
    try:
        with pytest.raises(EngineRejectedError, match="not ready within 1 s"):
            supervisor.apply({"max_batch_size": 16})
    finally:
        supervisor.spec = spec
    assert supervisor.config(0) == before
    send_request()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ((ENGINE_BIN, "serve", "--bogus-flag", "1"), "--bogus-flag is not a flag"),
        ((ENGINE_BIN, "serve", "--batch-size=4"), "--batch-size is set by the"),
        ((), "the command is empty"),
    ],
)
def test_a_command_with_a_flag_the_preset_does_not_own_is_refused(
    tmp_path: Path, command: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as info:
        Supervisor(ProcessSpec(name="x", preset="reference", command=command), tmp_path)
    assert info.value.field == "command"


def test_vllm_preset_writes_vllm_flags() -> None:
    preset = preset_for("vllm")
    argv = preset.argv(
        ("vllm", "serve", "--model", "m"),
        {"max_batch_size": 64, "precision": "bf16", "streams": 2},
        port=8001,
    )
    assert argv == [
        "vllm", "serve", "--model", "m", "--host", "127.0.0.1", "--port", "8001",
        "--max-num-seqs", "64", "--data-parallel-size", "2", "--dtype", "bfloat16",
    ]  # fmt: skip
    with pytest.raises(ValidationError, match="precision"):
        preset.argv(("vllm", "serve"), {"precision": "int8"}, port=1)


@pytest.mark.parametrize(
    ("name", "batch_flag"),
    [("sglang", "--max-running-requests"), ("tgi", "--max-batch-size")],
)
def test_other_presets_name_their_batch_flag(name: str, batch_flag: str) -> None:
    argv = preset_for(name).argv(("x",), {"max_batch_size": 8}, port=1)
    assert argv[argv.index(batch_flag) + 1] == "8"


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown preset 'trtllm'"):
        preset_for("trtllm")
