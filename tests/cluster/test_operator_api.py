"""The CRDs in a real API server: kubectl knows them, and the server itself refuses invalid
resources with a message a user can act on (OpenAPI schema and CEL rules, no webhook)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .operator_harness import Modelyard, model_deployment, training_job, wait_for

pytestmark = pytest.mark.cluster


def test_kubectl_explain_and_get(modelyard: Modelyard, ns: str) -> None:
    kubectl = modelyard.kubectl
    # The API server publishes a new CRD's OpenAPI a moment after it is Established.
    explained = wait_for(
        "kubectl explain trainingjob.spec",
        lambda: kubectl.run("explain", "trainingjob.spec", check=False).stdout,
        timeout=30,
    )
    for field in ("dataset", "model", "validation", "backoffLimit", "activeDeadlineSeconds"):
        assert field in explained, explained
    assert "allow-listed estimator" in kubectl("explain", "tj.spec.model.estimator")
    assert "Exactly one of trainingJobRef or storageUri" in kubectl("explain", "md.spec.model")

    assert "No resources found" in kubectl.run("get", "tj,md", "-n", ns).stderr
    kubectl.apply(training_job("explained"), namespace=ns)
    listed = kubectl("get", "modelyard", "-n", ns)  # the category
    assert "trainingjob.modelyard.io/explained" in listed, listed
    header = kubectl("get", "tj", "-n", ns).splitlines()[0].split()
    assert header == ["NAME", "PHASE", "MODEL", "ACCURACY", "R2", "AGE"]
    kubectl.apply(model_deployment("explained", training_job="explained"), namespace=ns)
    header = kubectl("get", "md", "-n", ns).splitlines()[0].split()
    columns = [
        "NAME",
        "READY",
        "READY",
        "REPLICAS",
        "DESIRED",
        "MODEL",
        "URL",
        "DRIFT",
        "ROLLOUT",
        "CANARY",
        "RETRAIN",
        "AGE",
    ]
    assert header == columns


def refused(modelyard: Modelyard, ns: str, obj: dict[str, Any]) -> str:
    """Create ``obj`` as a user would; return what kubectl told the user (it must fail)."""
    result = modelyard.kubectl.run(
        "create", "-n", ns, "-f", "-", input=json.dumps(obj), check=False
    )
    assert result.returncode != 0, f"the API server accepted an invalid object: {result.stdout}"
    return result.stderr


def test_model_source_must_be_exactly_one(modelyard: Modelyard, ns: str) -> None:
    both = model_deployment("both", training_job="iris", storage_uri="pvc://models/iris/v1")
    assert "set exactly one of trainingJobRef or storageUri" in refused(modelyard, ns, both)
    neither = model_deployment("neither")
    assert "set exactly one of trainingJobRef or storageUri" in refused(modelyard, ns, neither)
    pinned = model_deployment("pinned", training_job="iris")
    pinned["spec"]["model"]["sha256"] = "a" * 64
    assert "sha256 pins a storageUri" in refused(modelyard, ns, pinned)


def test_replicas_and_autoscaling_bounds(modelyard: Modelyard, ns: str) -> None:
    negative = model_deployment("negative", storage_uri="pvc://models/iris/v1", replicas=-1)
    message = refused(modelyard, ns, negative)
    assert "spec.replicas" in message and "should be greater than or equal to 0" in message
    both = model_deployment(
        "both", storage_uri="pvc://models/iris/v1", replicas=2, autoscaling={"maxReplicas": 3}
    )
    assert "set replicas or autoscaling, not both" in refused(modelyard, ns, both)
    inverted = model_deployment(
        "inverted",
        storage_uri="pvc://models/iris/v1",
        autoscaling={"minReplicas": 5, "maxReplicas": 2},
    )
    assert "minReplicas must not exceed maxReplicas" in refused(modelyard, ns, inverted)
    no_cpu = model_deployment(
        "nocpu", storage_uri="pvc://models/iris/v1", autoscaling={"maxReplicas": 2}
    )
    assert "needs resources.requests.cpu" in refused(modelyard, ns, no_cpu)


@pytest.mark.parametrize("name", ["2024-iris", "iris.v2", "a" * 64])
def test_a_model_deployment_name_must_name_a_service(
    modelyard: Modelyard, ns: str, name: str
) -> None:
    body = model_deployment(name, storage_uri="pvc://models/iris/v1")
    assert "a ModelDeployment names its Service" in refused(modelyard, ns, body)


@pytest.mark.parametrize(
    ("kind", "uri"),
    [
        ("ModelDeployment", "pvc://modelyard-models/iris/../../etc"),
        ("TrainingJob", "pvc://modelyard-models/../../etc/passwd"),
        ("TrainingJob", "file:///mnt/models/other/v1/model.skops"),
    ],
)
def test_uris_cannot_leave_their_claim(modelyard: Modelyard, ns: str, kind: str, uri: str) -> None:
    if kind == "ModelDeployment":
        body = model_deployment("escape", storage_uri=uri)
    else:
        body = training_job("escape", dataset={"uri": uri, "target": "x"})
    assert "should match" in refused(modelyard, ns, body)


def test_estimator_outside_the_allow_list(modelyard: Modelyard, ns: str) -> None:
    evil = training_job("evil", estimator="os.system")
    message = refused(modelyard, ns, evil)
    assert "spec.model.estimator" in message and "Unsupported value" in message, message
    assert '"os.system"' in message and "LogisticRegression" in message


def test_metrics_must_fit_the_task(modelyard: Modelyard, ns: str) -> None:
    mixed = training_job("mixed", estimator="Ridge")  # a regressor gated on accuracy
    assert "metrics (validation.metrics, validation.gate, search.metric) must fit" in refused(
        modelyard, ns, mixed
    )


@pytest.mark.parametrize(("test_size", "words"), [(1.5, "less than 1"), (0, "greater than 0")])
def test_test_size_out_of_range(
    modelyard: Modelyard, ns: str, test_size: float, words: str
) -> None:
    body = training_job("split")
    body["spec"]["validation"]["testSize"] = test_size
    message = refused(modelyard, ns, body)
    assert "spec.validation.testSize" in message and words in message, message


def test_dataset_needs_exactly_one_source(modelyard: Modelyard, ns: str) -> None:
    body = training_job("data")
    body["spec"]["dataset"] = {"builtin": "iris", "uri": "pvc://data/iris.csv", "target": "y"}
    assert "set exactly one of builtin or uri" in refused(modelyard, ns, body)


def test_a_parameter_space_is_values_or_a_range(modelyard: Modelyard, ns: str) -> None:
    body = training_job("space")
    body["spec"]["search"] = {
        "strategy": "random",
        "parameters": {"C": {"values": [1.0], "min": 0.1, "max": 10}},
    }
    message = refused(modelyard, ns, body)
    assert "spec.search.parameters.C" in message and "oneOf" in message, message
    body["spec"]["search"] = {"parameters": {"C": {"min": 0.1, "max": 10}}}  # grid + range
    assert "grid search needs values lists, not ranges" in refused(modelyard, ns, body)


@pytest.mark.parametrize(
    ("verb", "resource", "allowed"),
    [
        ("watch", "trainingjobs.modelyard.io", True),
        ("patch", "trainingjobs.modelyard.io/status", True),
        ("patch", "modeldeployments.modelyard.io/status", True),
        ("create", "jobs.batch", True),
        ("create", "deployments.apps", True),
        ("create", "events", True),
        ("list", "events", True),
        ("watch", "services", True),
        ("create", "poddisruptionbudgets.policy", True),
        ("update", "modeldeployments.modelyard.io/finalizers", True),
        ("patch", "events", False),
        # never a user's spec, never secrets, nothing it does not need
        ("update", "trainingjobs.modelyard.io", False),
        ("create", "trainingjobs.modelyard.io", True),  # spec.retraining's challengers
        ("delete", "trainingjobs.modelyard.io", True),  # past its historyLimit
        ("patch", "modeldeployments.modelyard.io", False),
        ("delete", "modeldeployments.modelyard.io", False),
        ("delete", "deployments.apps", True),  # a canary Deployment's end
        ("delete", "services", False),
        ("get", "secrets", False),
        ("create", "pods", False),
        ("patch", "pods/status", False),
        ("create", "rolebindings.rbac.authorization.k8s.io", False),
    ],
)
def test_operator_rbac_is_least_privilege(
    modelyard: Modelyard, verb: str, resource: str, allowed: bool
) -> None:
    """What the operator's own token may do (the tests run the operator with it)."""
    resource, _, sub = resource.partition("/")
    extra = [f"--subresource={sub}"] if sub else []
    answer = modelyard.as_operator.run(
        "auth", "can-i", verb, resource, *extra, "-n", "default", check=False
    ).stdout.strip()
    assert answer == ("yes" if allowed else "no"), (verb, resource, answer)
