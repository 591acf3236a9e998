"""Fixtures of the image tier; the helpers live in image_support."""

from image_support import docker_engine, runtime_image

__all__ = ["docker_engine", "runtime_image"]
