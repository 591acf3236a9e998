"""``python -m modelyard`` / ``modelyard-operator``: run the operator with settings from the
environment (``MODELYARD_*``, see ``modelyard.settings``).

Standalone by default: one replica, no peering objects needed. To run several replicas as
hot standbys, install kopf's ``ClusterKopfPeering``/``KopfPeering`` CRDs, drop ``standalone``
and pass ``peering_name`` (kopf then lets only the highest-priority instance act).
"""

from __future__ import annotations

import logging

import kopf

from modelyard import handlers, kube, logs
from modelyard.settings import OperatorSettings

__all__ = ["EXIT_NO_API_SERVER", "handlers", "main"]

log = logging.getLogger("modelyard")

# No API server to talk to (no credentials, or it does not answer): one log line says why.
# Left to kopf, a failed startup is retried every minute with a traceback each time.
EXIT_NO_API_SERVER = 2


def main() -> None:
    settings = OperatorSettings()
    logs.configure(settings.log_format, settings.log_level)
    try:
        kube.check_api_server()
    except kube.Unreachable as error:
        log.critical("modelyard-operator: %s", error)
        raise SystemExit(EXIT_NO_API_SERVER) from None
    kopf.run(
        standalone=True,
        clusterwide=settings.cluster_wide,
        namespaces=settings.namespaces,
        liveness_endpoint=settings.liveness_endpoint,
    )


if __name__ == "__main__":
    main()
