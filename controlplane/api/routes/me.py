from __future__ import annotations

from fastapi import APIRouter

from controlplane.api.deps import Viewer
from controlplane.schemas.users import Principal

router = APIRouter(prefix="/api/v1", tags=["Auth"])


@router.get("/whoami", response_model=Principal)
def whoami(who: Viewer) -> Principal:
    """The user and role behind the token, to check a token before using it."""
    return who
