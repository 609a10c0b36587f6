"""Tables for people, JSON for scripts: every listing command offers both."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

console = Console()


def emit(items: Sequence[BaseModel] | BaseModel, *, columns: Sequence[str], as_json: bool) -> None:
    many = not isinstance(items, BaseModel)
    rows = list(items) if not isinstance(items, BaseModel) else [items]
    if as_json:
        data: Any = [r.model_dump(mode="json") for r in rows]
        print(json.dumps(data if many else data[0], indent=2))
        return
    table = Table(*columns, box=None, header_style="bold")
    for r in rows:
        dumped = r.model_dump(mode="json")
        table.add_row(*(_cell(dumped.get(c)) for c in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return "" if value is None else str(value)
