"""Write (or ``--check``) the generated dashboard JSON: ``python -m dashboards.build``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dashboards import build_all
from dashboards import render

DEFAULT_DIR = Path(__file__).resolve().parent / "json"


def stale_files(out_dir: Path) -> list[str]:
    """Files in ``out_dir`` that differ from what the builders produce now (or are missing)."""
    stale = []
    for name, model in build_all().items():
        path = out_dir / f"{name}.json"
        if not path.is_file() or path.read_text() != render(model):
            stale.append(path.name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR, help="Output directory.")
    parser.add_argument(
        "--check", action="store_true", help="Exit 1 when a committed file is stale."
    )
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        if stale:
            print(f"stale dashboards (run make dashboards): {', '.join(stale)}", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, model in build_all().items():
        (args.out / f"{name}.json").write_text(render(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
