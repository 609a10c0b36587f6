"""Adapter for one model on an NVIDIA Triton Inference Server (``kind=triton``).

The engine URL names the model: ``http://host:8000/v2/models/<model>``. The server must run
with ``--model-control-mode=explicit`` so the repository API is the control plane's to
drive. Knobs come from the model configuration: ``max_batch_size``; ``streams``, the count
of the first instance group; the dynamic batcher's ``max_queue_delay_us`` and
``preferred_batch_size`` (0: none); ``precision`` where the model offers it as a parameter
(``precision``, with the legal values in ``precisions``, comma-separated), as python and
custom backends do.

``apply`` reloads the model with a configuration override (``POST
v2/repository/models/<model>/load`` with ``config``), which blocks until the new version is
loaded; Triton keeps the old one serving until then and keeps it when the load fails, so a
refused override changes nothing (its message is the error). Inference for the health
watch goes through tritonclient's HTTP client, the protocol users take.

Metrics: Triton's ``/metrics`` is on its own port (8002 by default); without an explicit
``metrics_url`` the adapter assumes the engine host on 8002.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import ClassVar
from urllib.parse import urlsplit

import numpy as np
import tritonclient.http as triton_http
from tritonclient.utils import InferenceServerException

from controlplane.domain import ConfigValue
from controlplane.domain import EngineConfig
from controlplane.domain import EngineRejectedError
from controlplane.domain import EngineTarget
from controlplane.domain import EngineUnreachableError
from controlplane.domain import Health
from controlplane.domain import Knob
from controlplane.domain import MetricMap
from controlplane.domain import MetricSource
from controlplane.domain import SearchSpace
from controlplane.domain import Series
from controlplane.domain import ValidationError
from controlplane.domain.quality import GreedyAnswer
from controlplane.domain.quality import PositionScore
from controlplane.domain.quality import QualityMeasure

DEFAULT_METRICS_PORT = 8002
LOAD_TIMEOUT_S = 300.0
_REASON_CHARS = 300

# What a Triton server exposes for every model (python, ONNX, TensorRT, ... backends),
# checked against a live server's exposition; TensorRT-LLM's extra gauges are in
# metric_maps.TRITON_METRICS for scraping only.
TRITON_SERVER_METRICS: MetricMap = {
    Series.requests_waiting: (MetricSource("nv_inference_pending_request_count", "gauge"),),
    Series.request_latency: (
        MetricSource("nv_inference_request_duration_us", "counter", scale=1e-6),
    ),
    Series.queue_time: (MetricSource("nv_inference_queue_duration_us", "counter", scale=1e-6),),
    Series.requests_succeeded: (MetricSource("nv_inference_request_success", "counter"),),
    Series.requests_failed: (MetricSource("nv_inference_request_failure", "counter"),),
}

_NP_DTYPES = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "INT32": np.int32,
    "INT64": np.int64,
    "INT8": np.int8,
    "UINT8": np.uint8,
    "BOOL": np.bool_,
}


def model_of(target: EngineTarget) -> tuple[str, str]:
    """``(host:port, model)`` from ``http://host:port/v2/models/<model>``.

    Raises:
        ValidationError: the URL does not name a model that way.
    """
    parts = urlsplit(target.url)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme != "http" or len(segments) != 3 or segments[:2] != ["v2", "models"]:
        raise ValidationError(
            f"engine {target.name!r}: a triton engine's url names its model, like "
            "http://host:8000/v2/models/<model>",
            field="url",
        )
    return parts.netloc, segments[2]


class TritonAdapter:
    kind: ClassVar[str] = "triton"
    metric_map: ClassVar[MetricMap] = TRITON_SERVER_METRICS
    # Triton's inference protocol carries tensors, not text and token log-probabilities:
    # the quality probe cannot judge it, and a quality spec for it is refused when set.
    quality_measures: ClassVar[frozenset[QualityMeasure]] = frozenset()
    quality_knobs: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, target: EngineTarget) -> None:
        self.target = target
        self._address, self.model = model_of(target)
        self._client = _client(self._address, timeout_s=10.0)

    @property
    def metrics_url(self) -> str:
        if self.target.metrics_url:
            return self.target.metrics_url
        host = self._address.rsplit(":", 1)[0]
        return f"http://{host}:{DEFAULT_METRICS_PORT}/metrics"

    def search_space(self) -> SearchSpace:
        return _space(self._config())

    def current_config(self) -> EngineConfig:
        return _knobs(self._config())

    def apply(self, changes: Mapping[str, ConfigValue]) -> EngineConfig:
        config = self._config()
        validated = _space(config).validate(changes)
        override = _override(config, validated)
        client = _client(self._address, timeout_s=LOAD_TIMEOUT_S)
        try:
            client.load_model(self.model, config=json.dumps(override))
        except InferenceServerException as exc:
            raise EngineRejectedError(
                f"triton refused the config of model {self.model!r}: {_reason(exc)}",
                field=next(iter(validated), None),
            ) from exc
        except Exception as exc:  # noqa: BLE001 - geventhttpclient raises socket errors
            raise EngineUnreachableError(
                f"engine {self.target.name!r}: loading {self.model!r} failed: {type(exc).__name__}"
            ) from exc
        finally:
            client.close()
        served = self.current_config()
        if any(served.get(k) != v for k, v in validated.items()):
            raise EngineUnreachableError(
                f"engine {self.target.name!r}: triton loaded {self.model!r} but serves "
                f"{served}, not {validated}"
            )
        return served

    def health(self) -> Health:
        started = time.monotonic()
        try:
            ready = self._client.is_server_ready() and self._client.is_model_ready(self.model)
        except Exception as exc:  # noqa: BLE001 - never raises, by contract
            return Health(ok=False, detail=f"{type(exc).__name__}: {exc}")
        latency = time.monotonic() - started
        if not ready:
            return Health(ok=False, detail=f"model {self.model!r} not ready", latency_s=latency)
        return Health(ok=True, detail="ok", latency_s=latency)

    def check_inference(self, timeout_s: float) -> Health:
        started = time.monotonic()
        try:
            config = self._config()
            inputs, outputs = _probe_request(config)
        except (EngineUnreachableError, ValueError) as exc:
            return Health(ok=False, detail=f"error: {exc}")
        client = _client(self._address, timeout_s=max(timeout_s, 1e-6))
        try:
            result = client.infer(self.model, inputs)
        except InferenceServerException as exc:
            return _failed(f"error: {_reason(exc)}")
        except Exception as exc:  # noqa: BLE001 - gevent's timeout is no Exception subclass
            name = type(exc).__name__
            timed_out = "timeout" in name.lower() or time.monotonic() - started >= timeout_s
            detail = (
                f"timeout: no answer within {timeout_s:g} s" if timed_out else f"error: {name}"
            )
            return _failed(detail)
        finally:
            client.close()
        latency = time.monotonic() - started
        if latency > timeout_s:
            return Health(ok=False, detail=f"timeout: answered after {latency:.3f} s")
        for name, shape in outputs:
            array = result.as_numpy(name)
            if array is None or tuple(array.shape[len(array.shape) - len(shape) :]) != shape:
                got = None if array is None else tuple(array.shape)
                return Health(ok=False, detail=f"wrong shape: {name} is {got}", latency_s=latency)
            if array.dtype.kind == "f" and not np.isfinite(array).all():
                detail = f"wrong shape: {name} is not finite"
                return Health(ok=False, detail=detail, latency_s=latency)
        return Health(ok=True, detail="ok", latency_s=latency)

    def greedy(self, prompt: str, *, max_tokens: int, timeout_s: float) -> GreedyAnswer:
        raise EngineRejectedError(f"engine {self.target.name!r}: triton has no text completions")

    def score(
        self, tokens: Sequence[int], *, start: int, top_k: int, timeout_s: float
    ) -> tuple[PositionScore, ...]:
        raise EngineRejectedError(f"engine {self.target.name!r}: triton returns no logprobs")

    def close(self) -> None:
        self._client.close()

    def _config(self) -> dict[str, Any]:
        try:
            config = self._client.get_model_config(self.model)
        except InferenceServerException as exc:
            raise EngineUnreachableError(
                f"engine {self.target.name!r}: no config for model {self.model!r}: {_reason(exc)}"
            ) from exc
        except Exception as exc:  # noqa: BLE001 - socket errors of geventhttpclient
            raise EngineUnreachableError(
                f"engine {self.target.name!r} at {self._address}: {type(exc).__name__}"
            ) from exc
        if not isinstance(config, dict):
            raise EngineUnreachableError("triton returned a model config that is not an object")
        return config


def _client(address: str, *, timeout_s: float) -> triton_http.InferenceServerClient:
    return triton_http.InferenceServerClient(
        url=address, connection_timeout=min(timeout_s, 3.0), network_timeout=timeout_s
    )


def _failed(detail: str) -> Health:
    return Health(ok=False, detail=detail, latency_s=None)


def _reason(exc: InferenceServerException) -> str:
    text = str(exc.message() if hasattr(exc, "message") else exc) or "no reason given"
    first = text.strip().splitlines()[0] if text.strip() else "no reason given"
    clean = "".join(ch if ch.isprintable() else " " for ch in first)
    return clean if len(clean) <= _REASON_CHARS else clean[: _REASON_CHARS - 3] + "..."


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _param(config: Mapping[str, Any], key: str) -> str | None:
    params = config.get("parameters") or {}
    value = params.get(key, {})
    text = value.get("string_value") if isinstance(value, dict) else None
    return str(text) if text is not None else None


def _knobs(config: Mapping[str, Any]) -> EngineConfig:
    groups = config.get("instance_group") or [{}]
    batching = config.get("dynamic_batching") or {}
    preferred = batching.get("preferred_batch_size") or []
    knobs: EngineConfig = {
        "max_batch_size": int(config.get("max_batch_size", 0)),
        "streams": int(groups[0].get("count", 1)),
        "precision": _param(config, "precision") or "fp32",
        "max_queue_delay_us": int(batching.get("max_queue_delay_microseconds", 0)),
        # [max_batch_size] is what Triton fills in when none is set: report it as none.
        "preferred_batch_size": int(preferred[0])
        if preferred and [int(p) for p in preferred] != [int(config.get("max_batch_size", 0))]
        else 0,
    }
    return knobs


def _space(config: Mapping[str, Any]) -> SearchSpace:
    current = _knobs(config)
    offered = _param(config, "precisions")
    precisions = tuple(p.strip() for p in offered.split(",") if p.strip()) if offered else ()
    if str(current["precision"]) not in precisions:
        precisions = (*precisions, str(current["precision"]))
    streams = max(2, 2 * _cores())
    return SearchSpace(
        (
            Knob("max_batch_size", "int", choices=(1, 2, 4, 8, 16, 32, 64), low=1, high=1024),
            Knob("streams", "int", choices=tuple(range(1, streams + 1)), low=1, high=streams),
            Knob("precision", "choice", choices=precisions),
            Knob(
                "max_queue_delay_us",
                "int",
                choices=(0, 100, 500, 1000, 5000),
                low=0,
                high=1_000_000,
                description="dynamic batching max_queue_delay_microseconds",
            ),
            Knob(
                "preferred_batch_size",
                "int",
                choices=(0, 2, 4, 8),
                low=0,
                high=1024,
                description="dynamic batching preferred_batch_size (0: none)",
            ),
        )
    )


def _override(config: Mapping[str, Any], changes: Mapping[str, ConfigValue]) -> dict[str, Any]:
    """The model configuration with ``changes`` written into its own fields."""
    new = copy.deepcopy(dict(config))
    if "max_batch_size" in changes:
        new["max_batch_size"] = int(changes["max_batch_size"])
    if "streams" in changes:
        groups = new.get("instance_group") or [{"kind": "KIND_CPU"}]
        groups[0] = {**groups[0], "count": int(changes["streams"])}
        new["instance_group"] = groups
    batching = dict(new.get("dynamic_batching") or {})
    if "max_queue_delay_us" in changes:
        batching["max_queue_delay_microseconds"] = int(changes["max_queue_delay_us"])
    if "preferred_batch_size" in changes:
        size = int(changes["preferred_batch_size"])
        batching["preferred_batch_size"] = [size] if size else []
    elif "max_batch_size" in changes and batching.get("preferred_batch_size"):
        # Triton fills empty preferred sizes in itself with [max_batch_size]: that default
        # follows the new max; sizes above a smaller max would make Triton refuse it all.
        top = int(changes["max_batch_size"])
        old = [int(p) for p in batching["preferred_batch_size"]]
        default = old == [int(config.get("max_batch_size", 0))]
        batching["preferred_batch_size"] = [] if default else [p for p in old if p <= top]
    if batching or "dynamic_batching" in new:
        new["dynamic_batching"] = batching
    if "precision" in changes:
        params = dict(new.get("parameters") or {})
        params["precision"] = {"string_value": str(changes["precision"])}
        new["parameters"] = params
    return new


def _probe_request(
    config: Mapping[str, Any],
) -> tuple[list[triton_http.InferInput], list[tuple[str, tuple[int, ...]]]]:
    """One all-zeros request of batch 1 for the model's inputs, and the output shapes."""
    batched = int(config.get("max_batch_size", 0)) > 0
    inputs = []
    for spec in config.get("input") or []:
        datatype = str(spec["data_type"]).removeprefix("TYPE_")
        dims = [max(1, int(d)) for d in spec.get("dims", [])]
        shape = [1, *dims] if batched else dims
        if datatype not in _NP_DTYPES:
            raise ValueError(f"input {spec['name']!r} has type {datatype}, not probed")
        tensor = triton_http.InferInput(spec["name"], shape, datatype)
        tensor.set_data_from_numpy(np.zeros(shape, dtype=_NP_DTYPES[datatype]))
        inputs.append(tensor)
    outputs = [
        (str(o["name"]), tuple(int(d) for d in o.get("dims", [])))
        for o in config.get("output") or []
        if all(int(d) > 0 for d in o.get("dims", []))
    ]
    if not inputs:
        raise ValueError("the model config lists no inputs")
    return inputs, outputs
