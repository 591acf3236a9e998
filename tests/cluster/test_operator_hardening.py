"""What the code review of 2026-12-02 found, against a real API server: records that vanish,
refusals that were only logged, a user's object taken over, a Ready that lied, two operators
acting at once."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from .operator_harness import (
    GROUP_VERSION,
    RESYNC_SECONDS,
    Modelyard,
    OperatorProcess,
    condition,
    condition_is,
    model_deployment,
    phase,
    running_trainer_pod,
    succeed_trainer,
    trainer_pods,
    training_job,
    wait_for,
)

pytestmark = pytest.mark.cluster

TOO_SMALL = {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}


def events(modelyard: Modelyard, ns: str, name: str) -> list[dict[str, Any]]:
    """The Events about our object ``name`` (not about its Deployment of the same name)."""
    found = modelyard.api.list("v1", "Event", ns)
    return [
        e
        for e in found
        if (e.get("involvedObject") or {}).get("name") == name
        and (e.get("involvedObject") or {}).get("apiVersion") == GROUP_VERSION
    ]


def settle() -> None:
    """Long enough for a few periodic resyncs to have run."""
    time.sleep(3 * RESYNC_SECONDS + 1)


def test_succeeded_stays_succeeded_when_its_pods_and_job_vanish(
    modelyard: Modelyard, ns: str
) -> None:
    api = modelyard.api
    modelyard.kubectl.apply(training_job("kept"), namespace=ns)
    said = succeed_trainer(api, running_trainer_pod(api, ns, "kept-g1"))
    tj = wait_for("Succeeded", lambda: (t := api.tj(ns, "kept")) and phase(t) == "Succeeded" and t)
    model = tj["status"]["model"]
    assert said.model is not None and model["sha256"] == said.model.sha256

    for pod in trainer_pods(api, ns, "kept-g1"):  # PodGC, or kubectl delete pod
        api.delete("v1", "Pod", ns, pod["metadata"]["name"])
    api.delete("batch/v1", "Job", ns, "kept-g1")  # the TTL controller, or kubectl delete job
    wait_for("the Job gone", lambda: api.get("batch/v1", "Job", ns, "kept-g1") is None)
    settle()
    tj = api.tj(ns, "kept")
    assert tj is not None and phase(tj) == "Succeeded", json.dumps(tj["status"], indent=2)
    assert tj["status"]["model"] == model
    assert api.get("batch/v1", "Job", ns, "kept-g1") is None, "never trained a second time"


def test_a_job_deleted_mid_training_is_reported_not_rerun(modelyard: Modelyard, ns: str) -> None:
    api = modelyard.api
    modelyard.kubectl.apply(training_job("lost"), namespace=ns)
    running_trainer_pod(api, ns, "lost-g1")
    api.delete("batch/v1", "Job", ns, "lost-g1")
    tj = wait_for(
        "Failed/JobDeleted",
        lambda: (t := api.tj(ns, "lost")) and phase(t) == "Failed" and t,
        show=lambda: api.tj(ns, "lost"),
    )
    assert tj["status"]["lastFailure"]["reason"] == "JobDeleted"
    settle()
    assert api.get("batch/v1", "Job", ns, "lost-g1") is None, "not silently re-run"
    assert any(
        e["reason"] == "Failed" and e["type"] == "Warning" for e in events(modelyard, ns, "lost")
    )


def test_children_the_api_server_refuses_reach_status(modelyard: Modelyard, ns: str) -> None:
    api = modelyard.api
    modelyard.kubectl.apply(
        training_job("small", resources=TOO_SMALL),
        model_deployment("small", storage_uri="pvc://modelyard-models/x/v1", resources=TOO_SMALL),
        namespace=ns,
    )
    tj = wait_for(
        "TrainingJob Failed/InvalidSpec",
        lambda: (t := api.tj(ns, "small")) and phase(t) == "Failed" and t,
        show=lambda: api.tj(ns, "small"),
    )
    failure = tj["status"]["lastFailure"]
    assert failure["reason"] == "InvalidSpec"
    assert "must be less than or equal to memory limit" in failure["message"], failure
    md = wait_for(
        "ModelDeployment Degraded",
        lambda: (m := api.md(ns, "small")) and phase(m) == "Degraded" and m,
        show=lambda: api.md(ns, "small"),
    )
    assert md["status"]["lastFailure"]["reason"] == "Invalid"
    assert "must be less than or equal to memory limit" in md["status"]["lastFailure"]["message"]
    assert not condition_is(md, "Ready")
    warned = {e["reason"] for e in events(modelyard, ns, "small") if e["type"] == "Warning"}
    assert {"Failed", "Degraded"} <= warned


def test_a_users_service_of_the_same_name_is_never_taken_over(
    modelyard: Modelyard, ns: str
) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl("create", "service", "clusterip", "frontend", "--tcp=80:8080", "-n", ns)
    before = api.get("v1", "Service", ns, "frontend")
    assert before is not None
    kubectl.apply(
        model_deployment("frontend", storage_uri="pvc://modelyard-models/iris/v1"), namespace=ns
    )
    md = wait_for(
        "Degraded/NameConflict",
        lambda: (m := api.md(ns, "frontend")) and phase(m) == "Degraded" and m,
        show=lambda: api.md(ns, "frontend"),
    )
    assert md["status"]["lastFailure"]["reason"] == "NameConflict"
    after = api.get("v1", "Service", ns, "frontend")
    assert after is not None
    assert after["spec"]["selector"] == before["spec"]["selector"]
    assert not after["metadata"].get("ownerReferences")
    kubectl("delete", "md", "frontend", "-n", ns)
    settle()
    assert api.get("v1", "Service", ns, "frontend") is not None, "the user's Service stays"


def test_ready_is_false_while_the_spec_names_a_model_nobody_serves(
    modelyard: Modelyard, ns: str
) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    kubectl.apply(
        model_deployment("moving", storage_uri="pvc://modelyard-models/iris/v1"), namespace=ns
    )
    wait_for(
        "Ready",
        lambda: condition_is(api.md(ns, "moving"), "Ready"),
        show=lambda: api.md(ns, "moving"),
    )
    api.patch(
        GROUP_VERSION,
        "ModelDeployment",
        ns,
        "moving",
        {"spec": {"model": {"storageUri": None, "trainingJobRef": {"name": "does-not-exist"}}}},
    )
    md = wait_for(
        "Ready=False on the new generation",
        lambda: (
            (m := api.md(ns, "moving"))
            and m["status"].get("observedGeneration") == m["metadata"]["generation"]
            and m
        ),
    )
    ready = condition(md, "Ready")
    assert ready is not None and ready["status"] == "False", ready
    assert ready["reason"] == "TrainingJobNotFound"
    result = kubectl.run(
        "wait", "--for=condition=Ready", "md/moving", "-n", ns, "--timeout=3s", check=False
    )
    assert result.returncode != 0, "kubectl wait must not return at once on a stale Ready"


def test_two_operators_elect_one_leader(
    modelyard: Modelyard, operator: OperatorProcess, ns: str
) -> None:
    """Two replicas with leader election: only the leader acts (every Event is its own), and
    when it is killed the standby takes over within the lease."""
    api = modelyard.api
    work = operator.log_path.parent
    operator.stop()  # the session's operator (no election) would act too
    pair = {
        name: OperatorProcess(
            modelyard.operator_kubeconfig,
            work / f"operator-{name}.log",
            MODELYARD_LEADER_ELECTION="true",
            MODELYARD_LEADER_ELECTION_LEASE_SECONDS="4",
            HOSTNAME=name,
        )
        for name in ("op-a", "op-b")
    }
    try:
        for proc in pair.values():
            proc.start()
        lease = wait_for(
            "a leader",
            lambda: (
                (
                    got := api.get(
                        "coordination.k8s.io/v1", "Lease", "modelyard-system", "modelyard-operator"
                    )
                )
                and got["spec"].get("holderIdentity")
                and got
            ),
        )
        leader = lease["spec"]["holderIdentity"].rsplit("-", 1)[0]
        standby = next(name for name in pair if name != leader)
        for i in range(3):
            modelyard.kubectl.apply(
                model_deployment(f"ha{i}", storage_uri="pvc://modelyard-models/iris/v1"),
                namespace=ns,
            )
        for i in range(3):
            wait_for(f"ha{i} Ready", lambda i=i: condition_is(api.md(ns, f"ha{i}"), "Ready"))
        writers = {
            e.get("reportingInstance") for i in range(3) for e in events(modelyard, ns, f"ha{i}")
        }
        assert writers == {leader}, writers

        pair[leader].kill()
        modelyard.kubectl.apply(
            model_deployment("after", storage_uri="pvc://modelyard-models/iris/v1"), namespace=ns
        )
        wait_for(
            "the standby took over", lambda: condition_is(api.md(ns, "after"), "Ready"), timeout=60
        )
        assert {e.get("reportingInstance") for e in events(modelyard, ns, "after")} == {standby}
    finally:
        for proc in pair.values():
            proc.stop()
        operator.start()


def test_owner_references_need_the_finalizers_grant_the_manifests_ship(
    modelyard: Modelyard, ns: str, tmp_path: Any
) -> None:
    """OwnerReferencesPermissionEnforcement is on (as in real clusters): an owner reference with
    blockOwnerDeletion needs `update` on the owner's finalizers. The operator's children carry
    one (every test here creates them); an account without the grant is refused."""
    for kind in ("trainingjobs", "modeldeployments"):
        can = ("auth", "can-i", "update", f"{kind}.modelyard.io", "--subresource=finalizers", "-A")
        allowed = modelyard.as_operator.run(*can, check=False)
        assert allowed.stdout.strip() == "yes", (kind, allowed.stdout, allowed.stderr)

    owner = modelyard.api.create(
        {**training_job("owner"), "metadata": {"name": "owner", "namespace": ns}}
    )
    modelyard.kubectl.apply(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "writer"}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "writer"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "writer"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"},
            "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": ns}],
        },
        namespace=ns,
    )
    writer = modelyard.cluster.service_account_kubeconfig(ns, "writer", tmp_path / "writer")
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": "TrainingJob",
                    "name": "owner",
                    "uid": owner["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
    }
    refused = subprocess.run(
        [str(modelyard.kubectl.binary), "--kubeconfig", str(writer), "create", "-f", "-"],
        input=json.dumps(child),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0, refused.stdout
    assert "cannot set blockOwnerDeletion" in refused.stderr, refused.stderr
