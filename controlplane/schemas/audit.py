from __future__ import annotations

from datetime import datetime
from typing import Any

from controlplane.schemas.base import ReadModel


class AuditEventRead(ReadModel):
    id: int
    ts: datetime
    actor: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]
