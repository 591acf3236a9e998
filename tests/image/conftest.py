"""Fixtures of the image tier; the helpers live in image_support."""

import sys
from pathlib import Path

# The runtime tier's request table (tests/runtime/v2_requests.py) is run against the image
# too: one copy of it, importable from here.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from image_support import docker_engine, operator_image, runtime_image

__all__ = ["docker_engine", "operator_image", "runtime_image"]
