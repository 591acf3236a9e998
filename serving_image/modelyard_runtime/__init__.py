"""Modelyard's runtime: the trainer (``modelyard-train``) and the V2 server (``modelyard-serve``).

No kopf, no Kubernetes client: this package is what the runtime image installs.
"""

__version__ = "0.1.0"
