"""Row-id arguments, bounded like the API's: an id past the key range names no row, and
Typer refuses it as a usage error (exit 2, one line) before the store is opened."""

from __future__ import annotations

from typing import Annotated

import typer

from controlplane.domain.ids import MAX_ROW_ID

RolloutId = Annotated[int, typer.Argument(min=1, max=MAX_ROW_ID, show_default=False)]
RunId = Annotated[int, typer.Argument(min=1, max=MAX_ROW_ID, show_default=False)]
ExperimentId = Annotated[int, typer.Argument(min=1, max=MAX_ROW_ID, show_default=False)]
TokenId = Annotated[int, typer.Argument(min=1, max=MAX_ROW_ID, show_default=False)]
