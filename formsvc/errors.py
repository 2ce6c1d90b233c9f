"""Typed errors: every user-visible failure carries a stable code and a Vietnamese message.

The CLI maps them to exit codes and the API to HTTP statuses without guessing.
"""

from __future__ import annotations

from typing import Any


class FormsvcError(Exception):
    """Base of all expected failures. `message` is shown to users (Vietnamese)."""

    code: str = "error"
    http_status: int = 400
    exit_code: int = 2

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.hint = hint
        self.detail = detail or {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        if self.detail:
            out["detail"] = self.detail
        return out


class InputError(FormsvcError):
    """The caller sent something unreadable or invalid."""

    code = "invalid_input"
    http_status = 422


class AuthError(FormsvcError):
    """No API key, or one that is unknown or revoked."""

    code = "unauthorized"
    http_status = 401


class ForbiddenError(FormsvcError):
    """The key is valid but its role may not do this."""

    code = "forbidden"
    http_status = 403


class ConflictError(FormsvcError):
    """The object changed since the caller read it, or is not in a state that allows the action."""

    code = "conflict"
    http_status = 409


class RateLimitError(FormsvcError):
    code = "rate_limited"
    http_status = 429


class NotFoundError(FormsvcError):
    code = "not_found"
    http_status = 404
    exit_code = 3


class ConfigError(FormsvcError):
    """Installation or data files are wrong (e.g. a malformed criteria set)."""

    code = "config_error"
    http_status = 500
    exit_code = 4


class CriteriaFileError(ConfigError):
    code = "criteria_file_invalid"


class LimitError(FormsvcError):
    """A configured limit was exceeded (size, pages, pixels)."""

    code = "limit_exceeded"
    http_status = 413


class BusyError(FormsvcError):
    """A bounded resource (converter queue, database) is saturated; try again later."""

    code = "busy"
    http_status = 503
    exit_code = 5


class ExternalToolError(FormsvcError):
    """A subprocess we depend on (LibreOffice, Tesseract) failed or timed out."""

    code = "external_tool_failed"
    http_status = 503
    exit_code = 5


class CriteriaImportError(InputError):
    """An official file's criteria table cannot be read into a criteria set; the message names the row."""

    code = "criteria_import_invalid"
