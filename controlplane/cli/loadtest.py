"""``cplane loadtest ENGINE``: a concurrency or rate sweep in the foreground, one table row
per step as it ends, then the knee, the saturation point and the report; ``cplane
loadtests list|show|stop`` for load tests started anywhere.

``--baseline RUN`` makes it a regression gate for CI: the sweep (by default the baseline's
own) is compared with the stored run step by step, and the command exits 1 naming the step
that regressed. Exit codes: 0 done (and no regression), 1 regressed, stopped or failed,
2 refused (nothing started). Ctrl-C and SIGTERM stop after the current window.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from pathlib import Path
from typing import Annotated
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from controlplane.cli.context import CliContext
from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.cli.ids import RunId
from controlplane.cli.output import emit
from controlplane.domain import ValidationError
from controlplane.schemas.loadtest import LoadTestCreate
from controlplane.schemas.loadtest import LoadTestRead
from controlplane.schemas.loadtest import LoadTestStepRead
from controlplane.schemas.loadtest import parse_prompts
from controlplane.schemas.tuning import parse_shapes
from controlplane.store import engines
from controlplane.store import loadtests
from controlplane.store.database import make_session_factory
from tuner.loadtest import LoadTester
from tuner.loadtest import LoadTestOutcome
from tuner.loadtest import LoadTestSpec
from tuner.loadtest import PngUnavailableError
from tuner.loadtest import StepFigures
from tuner.loadtest import start_load_test
from tuner.loadtest import sweep_orphaned_load_tests
from tuner.loadtest import write_png

app = typer.Typer(help="Load tests: list, show, stop.", no_args_is_help=True)
COLUMNS = ("id", "engine_id", "kind", "state", "actor", "created", "finished_at")
console = Console(stderr=True)
STEP_HEADS = ("load", "req/s", "tok/s", "p50 ms", "p90 ms", "p99 ms", "TTFT ms", "TPOT ms",
              "err", "429", "SLO")  # fmt: skip


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}"


def step_cells(s: StepFigures) -> list[str]:
    return [
        f"{s.offered:g}", f"{s.throughput_rps:.2f}", f"{s.output_tokens_per_s:.1f}",
        _ms(s.p50_ms), _ms(s.p90_ms), _ms(s.p99_ms), _ms(s.ttft_p50_ms), _ms(s.tpot_ms),
        str(s.errors), str(s.rejected), "ok" if s.meets_slo else "miss",
    ]  # fmt: skip


def loadtest(
    ctx: typer.Context,
    engine: Annotated[str, typer.Argument(help="Engine name or id.")],
    concurrency: Annotated[
        str | None, typer.Option(help="Closed-loop sweep: '1,2,4,8' or '1:512:x2'.")
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Open-loop sweep in req/s: '5:200:x1.5' or '10:100:+10'.")
    ] = None,
    arrivals: Annotated[str, typer.Option(help="Open loop: constant | poisson.")] = "constant",
    shapes: Annotated[
        str, typer.Option(help="Prompt x output length mix, e.g. '32x16+256x64'.")
    ] = "16x8",
    prompts: Annotated[
        Path | None, typer.Option(help='JSONL file, one {"prompt": ...} per line.')
    ] = None,
    slo: Annotated[
        list[str] | None,
        typer.Option(help="SLO for the knee, e.g. 'p99_ms<=300' (repeatable; default: engine's)."),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model to ask for (default: first).")] = None,
    seed: Annotated[int, typer.Option(min=0, max=2**31 - 1)] = 0,
    baseline: Annotated[
        int | None,
        typer.Option(min=1, help="Stored load test to gate against (exit 1 on regression)."),
    ] = None,
    png: Annotated[Path | None, typer.Option(help="Also draw the curves as a PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Sweep ENGINE's load and draw its performance-decay curve, knee and saturation point."""
    c = cli_context(ctx)
    sessions = make_session_factory(c.engine())
    sweep_orphaned_load_tests(sessions, stale_after_s=c.settings.tuner.stale_after_s)
    body: dict[str, Any] = {
        "concurrency": concurrency,
        "rate": rate,
        "arrivals": arrivals,
        "shapes": [s.model_dump() for s in parse_shapes(shapes)],
        "slo": slo or [],
        "model": model,
        "seed": seed,
        "baseline": baseline,
    }
    if prompts is not None:
        try:
            text = prompts.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"cannot read prompt file {prompts}: {exc}", field="prompts"
            ) from exc
        entries = parse_prompts(text, limit=c.settings.loadtest.max_prompts)
        body["prompts"] = [e.model_dump() for e in entries]
    with c.session() as session:
        if baseline is not None and concurrency is None and rate is None:
            # The gate repeats the baseline's own sweep unless told otherwise.
            base = LoadTestSpec.from_json(loadtests.get(session, baseline).spec)
            body[base.kind] = base.sweep_text()
            body["arrivals"] = base.arrivals
            body["shapes"] = [
                {"prompt_len": p, "max_tokens": m, "weight": w} for p, m, w in base.shapes
            ]
            body["slo"] = body["slo"] or list(base.slos)
        request = LoadTestCreate.model_validate(body)
        row = start_load_test(
            session,
            engine_ref=engine,
            request=request,
            policy=c.settings.loadtest,
            actor=cli_actor(),
        )
        load_test_id = row.id
    console.print(f"load test {load_test_id} on {engine}: {request.kind} {request.steps()}")
    raise typer.Exit(follow(c, load_test_id, as_json=as_json, png=png))


def follow(c: CliContext, load_test_id: int, *, as_json: bool, png: Path | None) -> int:
    for name in ("httpx",):
        logging.getLogger(name).setLevel(logging.WARNING)
    table = Table(*STEP_HEADS, box=None, header_style="bold")

    def on_step(step: StepFigures) -> None:
        table.add_row(*step_cells(step))
        if not as_json:
            cells = zip(STEP_HEADS, step_cells(step), strict=True)
            console.print(" ".join(f"{h}={v}" for h, v in cells), soft_wrap=True, highlight=False)

    tester = LoadTester(
        session_factory=make_session_factory(c.engine()), settings=c.settings, on_step=on_step
    )
    stop = threading.Event()
    outcome: list[LoadTestOutcome] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            outcome.append(tester.run(load_test_id, stop=stop))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    worker = threading.Thread(target=work, name=f"loadtest-{load_test_id}")
    worker.start()
    try:
        while worker.is_alive():
            try:
                worker.join(0.25)
            except KeyboardInterrupt:
                console.print("interrupted: stopping after the current window")
                stop.set()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if errors:
        raise errors[0]
    result = outcome[0]
    if png is not None and result.steps:
        spec = _spec(c, load_test_id)
        try:
            write_png(
                png,
                title=f"Load test {load_test_id}: {spec.engine}",
                steps=result.steps,
                kind=spec.kind,
                slos=spec.slo_objects(),
                knee=result.knee,
                saturation=result.saturation,
            )
        except PngUnavailableError as exc:
            console.print(f"no PNG: {exc}")
    if as_json:
        print(json.dumps(_read(c, load_test_id).model_dump(mode="json"), indent=2))
    else:
        _summary(result, table)
    if result.gate is not None and result.gate.regressed:
        return 1
    return 0 if result.state == "done" else 1


def _spec(c: CliContext, load_test_id: int) -> LoadTestSpec:
    with c.session() as session:
        return LoadTestSpec.from_json(loadtests.get(session, load_test_id).spec)


def _read(c: CliContext, load_test_id: int) -> LoadTestRead:
    with c.session() as session:
        read = LoadTestRead.model_validate(loadtests.get(session, load_test_id))
        read.steps = [
            LoadTestStepRead.model_validate(s) for s in loadtests.steps(session, load_test_id)
        ]
    return read


def _summary(result: LoadTestOutcome, table: Table) -> None:
    out = Console()
    out.print(f"\nload test {result.id}: {result.state}")
    out.print(table)
    if result.error:
        out.print(f"error: {result.error}")
    if result.stopped_by:
        out.print(f"stopped early: {result.stopped_by}")
    k, s = result.knee, result.saturation
    out.print(
        "knee: no step met the SLO"
        if k is None
        else f"knee: {k.throughput_rps:.2f} req/s at {k.offered:g} (p99 {_ms(k.p99_ms)} ms)"
    )
    out.print(
        "saturation: not reached (throughput still rising)"
        if s is None
        else f"saturation: {s.throughput_rps:.2f} req/s at {s.offered:g}"
    )
    gate = result.gate
    if gate is not None:
        if gate.regressed:
            for r in gate.regressions:
                out.print(f"REGRESSED: {r.describe()}")
        else:
            out.print(
                f"no regression against load test {gate.baseline_id} "
                f"({gate.compared} steps compared)"
            )
    if result.report:
        out.print(f"report: {result.report}")


@app.command("list")
def list_(
    ctx: typer.Context,
    engine: Annotated[str | None, typer.Option(help="Only this engine.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Newest first."""
    with cli_context(ctx).session() as session:
        engine_id = engines.get_engine(session, engine).id if engine else None
        rows = [
            LoadTestRead.model_validate(r)
            for r in loadtests.list_(session, engine_id=engine_id, limit=limit)
        ]
    emit(rows, columns=COLUMNS, as_json=as_json)


@app.command()
def show(ctx: typer.Context, load_test_id: RunId) -> None:
    """One load test (JSON): its spec, result and steps."""
    print(json.dumps(_read(cli_context(ctx), load_test_id).model_dump(mode="json"), indent=2))


@app.command()
def stop(ctx: typer.Context, load_test_id: RunId) -> None:
    """Ask a load test to stop after its current window (from any process)."""
    with cli_context(ctx).session() as session:
        loadtests.request_stop(session, load_test_id, actor=cli_actor())
    print(f"load test {load_test_id}: stop requested")
