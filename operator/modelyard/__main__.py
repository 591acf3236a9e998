"""``python -m modelyard`` / ``modelyard-operator``: run the operator with settings from the
environment (``MODELYARD_*``, see ``modelyard.settings``).

Standalone by default: one replica, no peering objects needed. To run several replicas as
hot standbys, install kopf's ``ClusterKopfPeering``/``KopfPeering`` CRDs, drop ``standalone``
and pass ``peering_name`` (kopf then lets only the highest-priority instance act).
"""

from __future__ import annotations

import kopf

from modelyard import handlers, logs
from modelyard.settings import OperatorSettings

__all__ = ["handlers", "main"]


def main() -> None:
    settings = OperatorSettings()
    logs.configure(settings.log_format, settings.log_level)
    kopf.run(
        standalone=True,
        clusterwide=settings.cluster_wide,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint,
    )


if __name__ == "__main__":
    main()
