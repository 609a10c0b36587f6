"""``cplane-engine serve``: run the reference engine behind uvicorn.

Bad input exits with status 2 and one line on stderr (no usage dump, no traceback), so a
supervisor or the control plane's process adapter can report it verbatim.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn
from typing import cast

import torch

from engine.config import ConfigError
from engine.config import EngineConfig
from engine.config import SearchSpace
from engine.edge import DEFAULT_MAX_BODY_BYTES
from engine.model import MODEL_SPECS
from engine.precision import ALL_PRECISIONS
from engine.precision import Precision

ADMIN_TOKEN_ENV = "CPLANE_ENGINE_ADMIN_TOKEN"
log = logging.getLogger("engine")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be <= 65535, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cplane-engine", description="The cplane reference inference engine.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = sub.add_parser("serve", help="serve the OpenAI-compatible API")
    serve.add_argument("--model", choices=sorted(MODEL_SPECS), default="small")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--batch-size", type=_positive_int, default=8)
    serve.add_argument("--streams", type=_positive_int, default=1)
    serve.add_argument("--precision", choices=ALL_PRECISIONS, default="fp32")
    serve.add_argument("--max-queue-delay-ms", type=_non_negative_float, default=0.0)
    serve.add_argument("--max-queue", type=_positive_int, default=256)
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--served-model-name", default=None)
    serve.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    serve.add_argument("--admin-token", default=None)
    serve.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body; a bigger one is refused with 413 before it is parsed",
    )
    serve.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )
    serve.add_argument("--access-log", action="store_true", help="log every HTTP request")
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.app import create_app
    from engine.service import Engine

    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    device = torch.device(args.device)
    config = EngineConfig(
        max_batch_size=args.batch_size,
        streams=args.streams,
        precision=cast(Precision, args.precision),
        max_queue_delay_ms=args.max_queue_delay_ms,
    )
    try:
        SearchSpace.for_device(device).validate(config)
    except ConfigError as exc:
        raise UsageError(f"--{(exc.param or 'config').replace('_', '-')}: {exc.message}") from exc
    admin_token = args.admin_token or os.environ.get(ADMIN_TOKEN_ENV) or None
    if admin_token is None:
        log.warning("no admin token: the /admin endpoints answer 403")
    engine = Engine(
        MODEL_SPECS[args.model],
        config,
        seed=args.seed,
        max_queue=args.max_queue,
        served_model_name=args.served_model_name,
        device=device,
    )
    app = create_app(engine, admin_token=admin_token, max_body_bytes=args.max_body_bytes)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(
            level=getattr(logging, args.log_level.upper()),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        return _serve(args)
    except UsageError as exc:
        print(f"cplane-engine: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
