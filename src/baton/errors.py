"""The one exception hierarchy of Baton.

::

    BatonError                      base; ``retryable`` says whether trying again can help
    ├── ConfigError (ValueError)     bad settings or workspace; fix the configuration
    ├── PolicyError (ValueError)     a policy file is invalid; carries file:line:col locations
    ├── ExpressionError (ValueError) a policy expression is invalid or failed, at line:col
    ├── InputError (ValueError)      an event, file or request body is malformed; never retryable
    │   └── TooLargeError            over a size, depth or count limit
    ├── NotFoundError (LookupError)  a ticket, action or entry does not exist
    ├── AuthError (PermissionError)  missing or wrong token, or a role that may not do this
    ├── StoreError (RuntimeError)    the database failed; retryable
    ├── ConnectorError (RuntimeError)
    │   ├── TransientConnectorError  timeouts, 5xx, 429: retry with backoff
    │   └── PermanentConnectorError  4xx and refusals: do not retry, dead-letter
    └── AuditError (RuntimeError)    the audit chain does not verify
"""

from __future__ import annotations

__all__ = [
    "AuditError",
    "AuthError",
    "BatonError",
    "ConfigError",
    "ConnectorError",
    "ExpressionError",
    "InputError",
    "NotFoundError",
    "PermanentConnectorError",
    "PolicyError",
    "StoreError",
    "TooLargeError",
    "TransientConnectorError",
]


class BatonError(Exception):
    """Base of every error Baton raises on purpose."""

    retryable: bool = False


class ConfigError(BatonError, ValueError):
    pass


class PolicyError(BatonError, ValueError):
    """A policy could not be loaded. ``problems`` holds every ``file:line:col: message`` found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class ExpressionError(BatonError, ValueError):
    """An expression is invalid, or failed while evaluated, at ``line:col`` of its source."""

    def __init__(self, message: str, *, line: int, col: int, where: str = "<expr>") -> None:
        self.message, self.line, self.col, self.where = message, line, col, where
        super().__init__(f"{where}:{line}:{col}: {message}")


class InputError(BatonError, ValueError):
    pass


class TooLargeError(InputError):
    """Over a limit. ``limit`` names which: ``"bytes"`` (HTTP 413) or a structural one such as
    ``"depth"`` or ``"count"`` (HTTP 400)."""

    def __init__(self, message: str, *, limit: str = "bytes") -> None:
        super().__init__(message)
        self.limit = limit


class NotFoundError(BatonError, LookupError):
    pass


class AuthError(BatonError, PermissionError):
    """Not allowed. ``forbidden`` distinguishes "who you are may not do this" (HTTP 403) from
    "we do not know who you are" (HTTP 401)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


class StoreError(BatonError, RuntimeError):
    retryable = True


class ConnectorError(BatonError, RuntimeError):
    pass


class TransientConnectorError(ConnectorError):
    """Worth retrying. ``retry_after`` (seconds) is the vendor's own hint when it gave one."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeferredDelivery(ConnectorError):
    """Not sent, on purpose: ask again in ``retry_after`` seconds. The target is healthy, so a
    deferral counts neither toward the dead-letter limit nor against the connector's circuit
    (each one still takes a claim, which bounds how often an action can be put off)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentConnectorError(ConnectorError):
    pass


class AuditError(BatonError, RuntimeError):
    pass
