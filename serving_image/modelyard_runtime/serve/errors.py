"""The server's one error type: a refusal with a code, which each transport maps to its own
status (app.py: HTTP), and a message for the ``{"error": ...}`` body."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """Why a request is not answered. No HTTP status here: the transport maps these."""

    INVALID = "invalid"  # the request is malformed or does not fit the model
    TOO_LARGE = "too_large"  # the body exceeds the server's limit
    NOT_FOUND = "not_found"  # no such route, model or version
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_READY = "not_ready"  # the model is not loaded yet
    OVERLOADED = "overloaded"  # too many inference requests in progress
    INTERNAL = "internal"  # the model failed on a valid request


class V2Error(Exception):
    """A request the server refuses: ``code`` says why (the transport maps it to a status),
    ``message`` is the ``{"error": message}`` the client reads."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
