"""The quality probe from the command line: record an engine's reference answers, check the
engine against them. Exit codes: 0 done (check: the spec held, or there is none), 1 the
check failed its spec, 2 refused before anything was sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated
from typing import Any

import typer

from controlplane.cli.context import cli_actor
from controlplane.cli.context import cli_context
from controlplane.domain import ValidationError
from controlplane.domain.quality import DEFAULT_TOP_K
from controlplane.domain.quality import ProbePrompt
from controlplane.domain.quality import parse_probe_set
from controlplane.engines import adapter_for
from controlplane.guard import quality as probe
from controlplane.store import engines
from controlplane.store import quality as quality_store

app = typer.Typer(
    help="Quality probe: does the engine still answer like its reference?", no_args_is_help=True
)
ConfigOpt = Annotated[
    list[str] | None,
    typer.Option("--config", help="knob=value the engine must be serving (repeatable)."),
]
MAX_PROMPTS_BYTES = 512 * 1024


def _config(pairs: list[str] | None) -> dict[str, str]:
    config: dict[str, str] = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--config {pair!r} is not knob=value", field="config")
        config[key.strip()] = value.strip()
    return config


def _prompts(path: Path | None) -> tuple[ProbePrompt, ...]:
    if path is None:
        return probe.default_probe_set()
    try:
        if path.stat().st_size > MAX_PROMPTS_BYTES:
            raise ValidationError(
                f"{path}: larger than {MAX_PROMPTS_BYTES // 1024} KiB", field="prompts"
            )
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}", field="prompts") from None
    return parse_probe_set(text, source=str(path))


@app.command()
def record(
    ctx: typer.Context,
    engine: str,
    config: ConfigOpt = None,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="JSONL probe set (default: 32 shipped).")
    ] = None,
    top_k: Annotated[int, typer.Option(min=1, max=20, help="Alternatives kept per token.")] = (
        DEFAULT_TOP_K
    ),
) -> None:
    """Send the probe set and store the greedy answers as the engine's reference."""
    probe_set = _prompts(prompts)
    wanted = _config(config)
    c = cli_context(ctx)
    with c.session() as session:
        row = engines.get_engine(session, engine)
        probe.require_settled(session, row)
        engine_id, target = row.id, engines.engine_target(row)
    adapter = adapter_for(target)
    try:
        served = probe.served_config(adapter, wanted)
        answers = probe.record(adapter, probe_set, top_k=top_k)
    finally:
        adapter.close()
    with c.session() as session:
        saved = quality_store.save_reference(
            session, engine_id=engine_id, config=served, top_k=top_k, answers=answers,
            actor=cli_actor(),
        )  # fmt: skip
    print(f"{engine}: recorded {len(saved.answers)} reference answers at {served}")


@app.command()
def check(
    ctx: typer.Context,
    engine: str,
    config: ConfigOpt = None,
    worst: Annotated[int, typer.Option(min=0, max=50, help="Worst prompts to list.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Probe the engine now: the measures against its reference and the worst prompts."""
    wanted = _config(config)
    c = cli_context(ctx)
    with c.session() as session:
        row = engines.get_engine(session, engine)
        reference = quality_store.require_reference(session, row)
        spec = quality_store.engine_quality(session, row.id)
        target = engines.engine_target(row)
    adapter = adapter_for(target)
    try:
        served = probe.served_config(adapter, wanted)
        result = probe.check(adapter, reference.answers, top_k=reference.top_k, config=served)
    finally:
        adapter.close()
    out: dict[str, Any] = {"reference": reference.summary(), **result.to_json(worst=worst)}
    passed = spec.passes(result) if spec is not None else True
    if spec is not None:
        out["spec"], out["passed"] = spec.spec(), passed
    if as_json:
        print(json.dumps(out, indent=2))
    else:
        _print(engine, out)
    raise typer.Exit(0 if passed else 1)


def _print(engine: str, out: dict[str, Any]) -> None:
    ref = out["reference"]
    kl = "n/a" if out["kl"] is None else f"{out['kl']:.5f}"
    nll = "n/a" if out["nll_delta"] is None else f"{out['nll_delta']:+.5f}"
    print(f"{engine} at {out['config']} against the reference recorded at {ref['config']}")
    print(
        f"  agreement {out['agreement']:.4f}  exact {out['exact']:.4f}  kl {kl}  "
        f"nll_delta {nll}  ({out['diverged']} of {out['prompts']} prompts diverged, "
        f"{out['duration_s']:.2f} s)"
    )
    if "spec" in out:
        print(f"  {out['spec']}: {'held' if out['passed'] else 'FAILED'}")
    for p in out["worst"]:
        where = "no divergence" if p["diverged_at"] is None else f"token {p['diverged_at']}"
        margin = "" if p["margin"] is None else f" (reference margin {p['margin']:.3g} nats)"
        print(
            f"  {p['id']}: agreement {p['agreement']:.3f}, diverged at {where}, "
            f"expected {p['expected']} got {p['got']}{margin}"
        )
