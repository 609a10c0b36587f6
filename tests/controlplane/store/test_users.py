from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from controlplane.domain import ConflictError
from controlplane.domain import Role
from controlplane.domain import UnauthenticatedError
from controlplane.domain import ValidationError
from controlplane.store import users
from controlplane.store.base import utcnow
from controlplane.store.models import ApiTokenRow


def test_token_authenticates_its_user_and_only_the_hash_is_stored(session: Session) -> None:
    with session.begin():
        user = users.create_user(session, name="ann", role=Role.operator, actor="t")
        row, secret = users.create_token(session, user=user, name="ci", ttl=None, actor="t")
    with session.begin():
        principal = users.authenticate(session, secret)
        assert (principal.name, principal.role) == ("ann", Role.operator)
        stored = session.scalars(select(ApiTokenRow)).one()
        assert secret not in (stored.token_hash, stored.prefix)
        assert stored.token_hash == users.hash_token(secret)
        assert stored.last_used_at is not None


@pytest.mark.parametrize("how", ["revoked", "expired", "disabled", "unknown"])
def test_dead_tokens_are_refused(session: Session, how: str) -> None:
    with session.begin():
        user = users.create_user(session, name="bob", role=Role.admin, actor="t")
        ttl = timedelta(seconds=1) if how == "expired" else None
        row, secret = users.create_token(session, user=user, name="x", ttl=ttl, actor="t")
        if how == "revoked":
            users.revoke_token(session, token_id=row.id, actor="t")
        if how == "disabled":
            user.disabled = True
    later = utcnow() + timedelta(seconds=5)
    with pytest.raises(UnauthenticatedError), session.begin():
        users.authenticate(session, secret + ("x" if how == "unknown" else ""), now=later)


def test_duplicate_and_malformed_user_names(session: Session) -> None:
    with session.begin():
        users.create_user(session, name="cat", role=Role.viewer, actor="t")
    with pytest.raises(ConflictError), session.begin():
        users.create_user(session, name="cat", role=Role.viewer, actor="t")
    with pytest.raises(ValidationError), session.begin():
        users.create_user(session, name="no spaces", role=Role.viewer, actor="t")
