"""Fixtures of the runtime tier; the helpers live in runtime_support (a unique module name:
several tiers have a conftest.py, so none is imported by name)."""

from runtime_support import iris_run, iris_server, session_dir

__all__ = ["iris_run", "iris_server", "session_dir"]
