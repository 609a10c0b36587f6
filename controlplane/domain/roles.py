"""Roles are ordered: each role may do everything the roles below it may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    operator = "operator"
    admin = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Role) -> bool:
        """True when this role is at least ``required``."""
        return self.rank >= required.rank


_RANK = {Role.viewer: 0, Role.operator: 1, Role.admin: 2}
