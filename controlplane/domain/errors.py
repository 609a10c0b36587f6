"""Domain errors: raised below the API layer, mapped to HTTP codes and CLI exits at the edge.

Lower layers never raise ``HTTPException`` or call ``sys.exit``; the API maps these classes to
status codes in one place (``controlplane.api.errors``) and the CLI to exit code 2.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class; ``str(err)`` is a complete one-line message fit for an operator."""


class ValidationError(DomainError):
    """Input that is well-formed but not acceptable (HTTP 422)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(DomainError):
    """The named object does not exist (HTTP 404)."""


class ConflictError(DomainError):
    """The change collides with existing state, e.g. a duplicate name (HTTP 409)."""


class IllegalTransitionError(ConflictError):
    """A state change its lifecycle's transition table does not allow (HTTP 409)."""

    def __init__(self, message: str, *, lifecycle: str, current: str, to: str) -> None:
        super().__init__(message)
        self.lifecycle = lifecycle
        self.current = current
        self.to = to


class UnauthenticatedError(DomainError):
    """No credentials, or credentials that match no live token (HTTP 401)."""


class PermissionDeniedError(DomainError):
    """Authenticated, but the role is too low for the action (HTTP 403)."""


class StoreUnavailableError(DomainError):
    """The SQL store cannot be reached; the message names the URL with its password masked."""


class SchemaOutdatedError(DomainError):
    """The store's schema is not at the code's head revision; the message names the fix."""


class EngineUnreachableError(DomainError):
    """The engine did not answer (connection refused, timeout, 5xx); HTTP 502 at the edge."""


class EngineRejectedError(ValidationError):
    """The engine refused a request as invalid (e.g. a config it cannot run); HTTP 422."""


class SecretKeyError(StoreUnavailableError):
    """The key that decrypts stored secrets is missing, malformed or not the one they were
    encrypted with (HTTP 503: the server, not the caller, must be fixed)."""
