"""Modelyard operator: trains scikit-learn models and serves them on Kubernetes.

Layout (pure core, thin shell):

- ``api``         pydantic models of the two custom resources (mirror ``crds/``)
- ``settings``    operator settings from ``MODELYARD_*`` environment variables
- ``naming``      deterministic names, labels, owner references
- ``conditions``  status conditions that only move ``lastTransitionTime`` on a real change
- ``training``    TrainingJob -> batch/v1 Job (pure) and (Job, pods, result) -> status (pure)
- ``serving``     ModelDeployment -> Deployment/Service/HPA (pure) and children -> status (pure)
- ``failures``    what went wrong in a pod, read from its status (pure)
- ``kube``        the only module that talks to the API server (server-side apply, status)
- ``reconcile``   read -> pure core -> apply, one idempotent function per kind
- ``handlers``    kopf wiring: a few lines per event
"""

API_GROUP = "modelyard.io"
API_VERSION = "v1alpha1"
FIELD_MANAGER = "modelyard"
