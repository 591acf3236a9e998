"""Failures the trainer reports with a specific exit code and result reason."""

from __future__ import annotations

from modelyard_runtime.contract import ExitCode, ResultReason


class TrainerError(Exception):
    """A failure that is the spec's or the data's fault: retrying cannot help."""

    exit_code: ExitCode = ExitCode.INTERNAL_ERROR
    reason: ResultReason = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidSpec(TrainerError):
    exit_code = ExitCode.INVALID_SPEC
    reason = "InvalidSpec"


class InvalidData(TrainerError):
    exit_code = ExitCode.INVALID_DATA
    reason = "InvalidData"
