"""Small helpers the e2e fixtures and tests share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def skip_or_fail(msg: str) -> None:
    # CI (CI=true, where .ci/run provisions containerd, the kubelet and the images) must never
    # pass by skipping; MODELYARD_E2E_REQUIRED=1 asks the same strictness elsewhere.
    strict = os.environ.get("CI", "").lower() == "true"
    if strict or os.environ.get("MODELYARD_E2E_REQUIRED") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def full_image_name(ref: str) -> str:
    """Docker's short names as containerd stores them (docker.io/library/x:tag)."""
    return ref if "/" in ref else f"docker.io/library/{ref}"
