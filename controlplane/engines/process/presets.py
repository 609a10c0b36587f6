"""Command-line presets: how each engine's flags spell the canonical knobs.

A preset is the whole contract between the process adapter and an engine's command line:
which flag carries each knob (and how a canonical value is written there, e.g. precision
``bf16`` is vLLM's ``--dtype bfloat16``), how to name the host and port, where health is,
and which other flags an operator may put in the base command. A flag the preset does not
know is refused before anything starts: a typo in a command line must not reach a GPU node
as a crash loop.

Flag names were checked against each engine's documented arguments: vLLM's "Engine
Arguments" (``vllm serve --help``: ``--max-num-seqs``, ``--max-num-batched-tokens``,
``--dtype {auto,half,float16,bfloat16,float,float32}``, ``--data-parallel-size``,
``--gpu-memory-utilization``), SGLang's "Server Arguments" (``--max-running-requests``,
``--chunked-prefill-size``, ``--dtype``, ``--dp-size``, ``--mem-fraction-static``) and
TGI's "text-generation-launcher arguments" (``--max-batch-size``,
``--max-concurrent-requests``, ``--dtype {float16,bfloat16}``, ``--hostname``). The
reference preset is the project's own ``cplane-engine serve``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import Knob
from controlplane.domain import MetricMap
from controlplane.domain import SearchSpace
from controlplane.domain import ValidationError
from controlplane.engines.metric_maps import SGLANG_METRICS
from controlplane.engines.metric_maps import TGI_METRICS
from controlplane.engines.metric_maps import VLLM_METRICS
from controlplane.engines.reference import REFERENCE_METRICS

BATCH_GRID: tuple[ConfigValue, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)


@dataclass(frozen=True)
class KnobFlag:
    """One knob on the command line: ``flag value``, with ``spelling`` mapping canonical
    values to the engine's own words (values absent from it are written as they are)."""

    knob: Knob
    flag: str
    spelling: Mapping[ConfigValue, str] = field(default_factory=dict)

    def argv(self, value: ConfigValue) -> list[str]:
        return [self.flag, self.spelling.get(value, str(value))]


@dataclass(frozen=True)
class Preset:
    name: str
    knobs: tuple[KnobFlag, ...]
    host_flag: str
    port_flag: str
    health_path: str
    metric_map: MetricMap
    allowed_flags: frozenset[str]
    """Flags the base command may carry (model, paths, ...); knob and port flags are not
    among them: the adapter owns those."""
    startup_timeout_s: float = 600.0

    def search_space(self) -> SearchSpace:
        return SearchSpace(tuple(k.knob for k in self.knobs))

    def defaults(self) -> EngineConfig:
        return {k.knob.name: k.knob.default for k in self.knobs if k.knob.default is not None}

    def check_command(self, command: Sequence[str]) -> None:
        """Refuse a base command with a flag this preset does not know, or one it owns.

        Raises:
            ValidationError: field ``command``, naming the flag.
        """
        if not command:
            raise ValidationError("the command is empty", field="command")
        owned = {k.flag for k in self.knobs} | {self.host_flag, self.port_flag}
        for arg in command[1:]:
            if not arg.startswith("--"):
                continue
            flag = arg.split("=", 1)[0]
            if flag in owned:
                raise ValidationError(
                    f"{flag} is set by the {self.name} preset (a knob, the host or the port); "
                    "change it through the engine's config, not its command",
                    field="command",
                )
            if flag not in self.allowed_flags:
                known = ", ".join(sorted(self.allowed_flags))
                raise ValidationError(
                    f"{flag} is not a flag the {self.name} preset knows (allowed: {known})",
                    field="command",
                )

    def argv(
        self, command: Sequence[str], config: Mapping[str, ConfigValue], *, port: int
    ) -> list[str]:
        """The full command line for ``config`` (validated) on loopback ``port``."""
        validated = self.search_space().validate(config)
        args = list(command) + [self.host_flag, "127.0.0.1", self.port_flag, str(port)]
        for knob in self.knobs:
            if knob.knob.name in validated:
                args += knob.argv(validated[knob.knob.name])
        return args


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _batch(flag: str, default: int) -> KnobFlag:
    return KnobFlag(
        Knob("max_batch_size", "int", choices=BATCH_GRID, low=1, high=1024, default=default),
        flag,
    )


_TORCH_DTYPES: Mapping[ConfigValue, str] = {
    "fp32": "float32",
    "fp16": "float16",
    "bf16": "bfloat16",
}


def reference() -> Preset:
    streams = max(2, 2 * _cores())
    return Preset(
        name="reference",
        knobs=(
            KnobFlag(
                Knob(
                    "max_batch_size",
                    "int",
                    choices=(1, 2, 4, 8, 16, 32, 64),
                    low=1,
                    high=64,
                    default=8,
                ),
                "--batch-size",
            ),
            KnobFlag(
                Knob(
                    "streams",
                    "int",
                    choices=tuple(range(1, streams + 1)),
                    low=1,
                    high=streams,
                    default=1,
                ),
                "--streams",
            ),
            KnobFlag(
                Knob("precision", "choice", choices=("fp32", "bf16"), default="fp32"),
                "--precision",
            ),
            KnobFlag(
                Knob(
                    "max_queue_delay_ms",
                    "float",
                    choices=(0.0, 1.0, 2.0, 5.0, 10.0),
                    low=0.0,
                    high=1000.0,
                    default=0.0,
                ),
                "--max-queue-delay-ms",
            ),
        ),
        host_flag="--host",
        port_flag="--port",
        health_path="/healthz",
        metric_map=REFERENCE_METRICS,
        allowed_flags=frozenset(
            {
                "--model",
                "--served-model-name",
                "--seed",
                "--device",
                "--max-queue",
                "--max-body-bytes",
                "--log-level",
                "--access-log",
            }
        ),
        startup_timeout_s=60.0,
    )


def vllm() -> Preset:
    return Preset(
        name="vllm",
        knobs=(
            _batch("--max-num-seqs", 256),
            # Data-parallel engine copies on one node: vLLM's nearest thing to "streams".
            KnobFlag(
                Knob("streams", "int", choices=(1, 2, 4, 8), low=1, high=8, default=1),
                "--data-parallel-size",
            ),
            KnobFlag(
                Knob("precision", "choice", choices=("fp32", "fp16", "bf16"), default="bf16"),
                "--dtype",
                _TORCH_DTYPES,
            ),
            KnobFlag(
                Knob(
                    "max_num_batched_tokens",
                    "int",
                    choices=(2048, 4096, 8192, 16384),
                    low=256,
                    high=1 << 20,
                ),
                "--max-num-batched-tokens",
            ),
            KnobFlag(
                Knob(
                    "gpu_memory_utilization",
                    "float",
                    choices=(0.8, 0.85, 0.9, 0.95),
                    low=0.1,
                    high=0.99,
                    default=0.9,
                ),
                "--gpu-memory-utilization",
            ),
        ),
        host_flag="--host",
        port_flag="--port",
        health_path="/health",
        metric_map=VLLM_METRICS,
        allowed_flags=frozenset(
            {
                "--model",
                "--served-model-name",
                "--tokenizer",
                "--revision",
                "--download-dir",
                "--max-model-len",
                "--tensor-parallel-size",
                "--pipeline-parallel-size",
                "--trust-remote-code",
                "--enforce-eager",
                "--kv-cache-dtype",
                "--quantization",
                "--enable-prefix-caching",
                "--seed",
                "--api-key",
                "--shutdown-timeout",
            }
        ),
    )


def sglang() -> Preset:
    return Preset(
        name="sglang",
        knobs=(
            _batch("--max-running-requests", 128),
            KnobFlag(
                Knob("streams", "int", choices=(1, 2, 4, 8), low=1, high=8, default=1), "--dp-size"
            ),
            KnobFlag(
                Knob("precision", "choice", choices=("fp32", "fp16", "bf16"), default="bf16"),
                "--dtype",
                _TORCH_DTYPES,
            ),
            KnobFlag(
                Knob(
                    "chunked_prefill_size",
                    "int",
                    choices=(2048, 4096, 8192),
                    low=256,
                    high=1 << 20,
                ),
                "--chunked-prefill-size",
            ),
            KnobFlag(
                Knob("mem_fraction_static", "float", choices=(0.8, 0.85, 0.9), low=0.1, high=0.99),
                "--mem-fraction-static",
            ),
        ),
        host_flag="--host",
        port_flag="--port",
        health_path="/health",
        metric_map=SGLANG_METRICS,
        allowed_flags=frozenset(
            {
                "--model-path",
                "--served-model-name",
                "--tokenizer-path",
                "--tp-size",
                "--context-length",
                "--trust-remote-code",
                "--quantization",
                "--kv-cache-dtype",
                "--enable-metrics",
                "--api-key",
                "--random-seed",
            }
        ),
    )


def tgi() -> Preset:
    return Preset(
        name="tgi",
        knobs=(
            _batch("--max-batch-size", 32),
            # TGI shards one model across GPUs; it has no independent engine copies.
            KnobFlag(Knob("streams", "int", choices=(1,), default=1), "--num-shard"),
            KnobFlag(
                Knob("precision", "choice", choices=("fp16", "bf16"), default="bf16"),
                "--dtype",
                _TORCH_DTYPES,
            ),
            KnobFlag(
                Knob(
                    "max_concurrent_requests",
                    "int",
                    choices=(64, 128, 256, 512),
                    low=1,
                    high=1 << 16,
                    default=128,
                ),
                "--max-concurrent-requests",
            ),
        ),
        host_flag="--hostname",
        port_flag="--port",
        health_path="/health",
        metric_map=TGI_METRICS,
        allowed_flags=frozenset(
            {
                "--model-id",
                "--revision",
                "--quantize",
                "--max-input-tokens",
                "--max-total-tokens",
                "--max-batch-prefill-tokens",
                "--trust-remote-code",
                "--huggingface-hub-cache",
                "--json-output",
            }
        ),
    )


PRESETS = {"reference": reference, "vllm": vllm, "sglang": sglang, "tgi": tgi}


def preset_for(name: str) -> Preset:
    """Raises: ValidationError (field ``preset``) for an unknown preset."""
    try:
        return PRESETS[name]()
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ValidationError(
            f"unknown preset {name!r} (known: {known})", field="preset"
        ) from None
