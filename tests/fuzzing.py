"""Property-based fuzzing of a running server's OpenAPI schema with schemathesis.

Every operation gets generated requests, valid ones and deliberately invalid ones, sent over
real HTTP with the given headers; each response must not be a 5xx and must match the schema
the server publishes for its status. Failures are collected over all operations and reported
together, each with the request that caused it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from collections.abc import Collection
from dataclasses import dataclass
from dataclasses import field

import schemathesis
from hypothesis import HealthCheck
from hypothesis import Phase
from hypothesis import given
from hypothesis import settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

# Examples per operation and mode; CP_FUZZ_EXAMPLES raises it for a deeper local run.
EXAMPLES = int(os.environ.get("CP_FUZZ_EXAMPLES", "10"))


@dataclass
class FuzzReport:
    requests: int = 0
    operations: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def fuzz(
    base_url: str,
    *,
    headers: dict[str, str],
    skip: Collection[tuple[str, str]] = (),
    examples: int = EXAMPLES,
    timeout_s: float = 30.0,
    on_response: Callable[[str, int], None] | None = None,
) -> FuzzReport:
    """Fuzz every operation of ``{base_url}/openapi.json`` but those in ``skip`` (method,
    path template)."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=timeout_s)
    report = FuzzReport()
    for result in schema.get_all_operations():
        operation = result.ok()
        method, path = operation.method.upper(), operation.path
        if (method, path) in skip:
            continue
        label = f"{method} {path}"
        report.operations.append(label)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz_one(
                operation.as_strategy(generation_mode=mode),
                f"{label} ({mode.value})",
                base_url=base_url,
                headers=headers,
                examples=examples,
                timeout_s=timeout_s,
                report=report,
                on_response=lambda status, label=label: (
                    on_response(label, status) if on_response is not None else None
                ),
            )
    return report


def _fuzz_one(
    strategy: SearchStrategy[schemathesis.Case],
    label: str,
    *,
    base_url: str,
    headers: dict[str, str],
    examples: int,
    timeout_s: float,
    report: FuzzReport,
    on_response: Callable[[int], None],
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, headers=headers, timeout=timeout_s)
        report.requests += 1
        on_response(response.status_code)
        try:
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )
        except (Failure, FailureGroup) as exc:
            report.failures.append(
                f"{label} -> {response.status_code}: "
                f"{case.as_curl_command(base_url=base_url)}\n{exc}"
            )

    try:
        one()
    except Unsatisfiable:
        pass  # nothing to make invalid (an operation without parameters, in negative mode)
