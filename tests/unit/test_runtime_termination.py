"""The server's termination message: '<Reason>: why', cut to the kubelet's 4 KiB."""

from __future__ import annotations

from pathlib import Path

from modelyard_runtime.contract import TERMINATION_MESSAGE_LIMIT, ServerExitCode
from modelyard_runtime.serve.__main__ import write_termination_message


def test_reason_word_then_why(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    write_termination_message(str(path), ServerExitCode.MODEL_LOAD_FAILED, "sha256 mismatch")
    assert path.read_text() == "ModelLoadFailed: sha256 mismatch"
    assert ServerExitCode.MODEL_LOAD_FAILED == 3


def test_long_reason_is_cut_on_a_character(tmp_path: Path) -> None:
    path = tmp_path / "termination-log"
    write_termination_message(str(path), ServerExitCode.MODEL_LOAD_FAILED, "é" * 5000)
    text = path.read_bytes()
    assert len(text) <= TERMINATION_MESSAGE_LIMIT
    assert text.decode().startswith("ModelLoadFailed: éé")


def test_unwritable_path_is_not_fatal(tmp_path: Path) -> None:
    write_termination_message(str(tmp_path / "no" / "such" / "dir"), ServerExitCode.FAILED, "x")
