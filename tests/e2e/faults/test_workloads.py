"""Faults of what the operator runs: serving children deleted by hand, trainer pods and Jobs
lost, the kubelet away, a trainer out of memory, a full models volume, a name taken by
someone else's object.

"Nothing lost", per fault: a TrainingJob ends with exactly one model (or, when it cannot
train, with a failure that says why and no model); the steady client's failures are counted
and bounded; status converges and stays true after another reconcile.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.operator_harness import (
    GROUP_VERSION,
    Modelyard,
    OperatorProcess,
    condition,
    condition_is,
    model_deployment,
    phase,
    training_job,
    wait_for,
)

from ..node import RealNode
from .faultlib import (
    MODELS_ROOT,
    REPLICAS,
    RESYNC_SECONDS,
    WATCH_SECONDS,
    FaultNamespace,
    RowRecorder,
    Served,
    SteadyClient,
    delete_by_hand,
    holds,
    jobs_of,
    md_ready,
    model_versions,
    server_pods_of,
    status_of,
    tj_finished,
    touch,
    trainer_pods_of,
    waited,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

KUBELET_DOWN_SECONDS = 15.0  # well under the node monitor's grace period: the node stays Ready
TRAINING_SECONDS = 240.0  # a whole training on this 2-core machine, pod start included
SERVING_SECONDS = 120.0  # new server pods Ready


def ready_server_pods(modelyard: Modelyard, served: Served) -> list[dict[str, Any]]:
    return [
        p
        for p in server_pods_of(modelyard.api, served.namespace, served.name)
        if condition_is(p, "Ready") and not p["metadata"].get("deletionTimestamp")
    ]


def running_trainer(modelyard: Modelyard, namespace: str, name: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        for pod in trainer_pods_of(modelyard.api, namespace, name):
            if (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get(
                "deletionTimestamp"
            ):
                return pod
        return None

    found: dict[str, Any] = wait_for(
        f"a Running trainer pod of TrainingJob {name}",
        find,
        timeout=TRAINING_SECONDS,
        interval=0.2,
        show=lambda: trainer_pods_of(modelyard.api, namespace, name),
    )
    return found


def slow_training_job(name: str) -> dict[str, Any]:
    """Long enough (~10 s of fitting here) that a deletion lands mid-training, not after."""
    return training_job(
        name,
        dataset={"builtin": "digits"},
        model={"estimator": "RandomForestClassifier", "hyperparameters": {"n_estimators": 150}},
        validation={
            "testSize": 0.2,
            "cvFolds": 3,
            "metrics": ["accuracy"],
            "gate": [{"metric": "accuracy", "min": 0.8}],
        },
    )


def training_trainer(modelyard: Modelyard, namespace: str, name: str) -> dict[str, Any]:
    """A trainer pod past its imports and into ``train()`` (its "training" log line)."""
    pod = running_trainer(modelyard, namespace, name)
    pod_name = pod["metadata"]["name"]

    def training() -> bool:
        logs = modelyard.kubectl.run("logs", "-n", namespace, pod_name, check=False).stdout
        return '"training"' in logs

    wait_for(f"trainer {pod_name} training", training, timeout=120, interval=0.3)
    return pod


def new_pods_ready(modelyard: Modelyard, served: Served, gone: set[str]) -> dict[str, Any] | None:
    """The ModelDeployment Ready on all replicas again, with none of the ``gone`` pods."""
    names = {p["metadata"]["name"] for p in ready_server_pods(modelyard, served)}
    if len(names) == REPLICAS and not names & gone:
        return md_ready(modelyard.api, served.namespace, served.name, REPLICAS)
    return None


def stays_ready(modelyard: Modelyard, served: Served) -> None:
    """Another reconcile (a touched Deployment) leaves the ModelDeployment Ready."""
    touch(modelyard.kubectl, "deployment", served.namespace, served.name)
    holds(
        "ModelDeployment iris Ready on all replicas",
        lambda: md_ready(modelyard.api, served.namespace, served.name, REPLICAS),
        3,
        show=lambda: {
            "md": status_of(modelyard.api.md(served.namespace, served.name)),
            "deployment": status_of(
                modelyard.api.get("apps/v1", "Deployment", served.namespace, served.name)
            ),
            "pods": [
                (
                    p["metadata"]["name"],
                    condition_is(p, "Ready"),
                    p["metadata"].get("deletionTimestamp"),
                )
                for p in server_pods_of(modelyard.api, served.namespace, served.name)
            ],
        },
    )


# --- serving children deleted by hand ------------------------------------------------------------


def test_server_pod_deleted(
    modelyard: Modelyard, healthy: Served, steady: SteadyClient, report: RowRecorder
) -> None:
    victim = ready_server_pods(modelyard, healthy)[0]["metadata"]["name"]
    with steady.window("server pod deleted") as win:
        modelyard.api.delete("v1", "Pod", healthy.namespace, victim)
        back, took = waited(lambda: new_pods_ready(modelyard, healthy, {victim}), SERVING_SECONDS)
    stats = win.stats()
    report.add(
        "a server pod deleted by hand (2 replicas)",
        "replaced, ModelDeployment Ready 2/2 again" if back else "NOT back to Ready 2/2",
        took if back else None,
        stats.lost(),
    )
    assert back, status_of(modelyard.api.md(healthy.namespace, healthy.name))
    # Two replicas and a preStop pause: the other pod takes every request meanwhile.
    assert stats.failed == 0, stats
    stays_ready(modelyard, healthy)


def test_service_deleted(
    modelyard: Modelyard, healthy: Served, steady: SteadyClient, report: RowRecorder
) -> None:
    api, ns, name = modelyard.api, healthy.namespace, healthy.name
    old = api.get("v1", "Service", ns, name)
    assert old is not None
    old_uid = old["metadata"]["uid"]

    def recreated() -> dict[str, Any] | None:
        svc = api.get("v1", "Service", ns, name)
        return svc if svc is not None and svc["metadata"]["uid"] != old_uid else None

    with steady.window("Service deleted") as win:
        api.delete("v1", "Service", ns, name)
        svc, took = waited(recreated, WATCH_SECONDS)
        late = None
        if svc is None:  # how late, for the report (and to leave a Service for the next test)
            svc, late = waited(recreated, RESYNC_SECONDS + 15)
            late = None if svc is None else late + WATCH_SECONDS
        answered, _ = waited(steady.last_ok, 15)
    stats = win.stats()
    if svc is not None and late is None:
        happened = f"recreated (new ClusterIP {svc['spec'].get('clusterIP')})"
    elif svc is not None:
        happened = f"recreated only after {late:.0f}s (the periodic resync; Services unwatched)"
    else:
        happened = "NOT recreated"
    report.add(
        "the Service deleted by hand",
        happened,
        took if svc is not None and late is None else (f"{late:.0f}s (late)" if late else None),
        stats.lost(),
    )
    assert svc is not None and late is None, (
        f"the Service did not come back within {WATCH_SECONDS:.0f}s: the operator does not "
        "watch the Services it owns"
        + (f" (it came back after {late:.0f}s, at a resync)" if late else "")
    )
    refs = svc["metadata"].get("ownerReferences") or []
    assert [r.get("kind") for r in refs] == ["ModelDeployment"], refs
    assert answered, "the recreated Service does not answer"
    # Bounded: requests fail only while there is no Service (and its new ClusterIP is learnt).
    assert stats.longest_outage <= WATCH_SECONDS + 5, stats
    stays_ready(modelyard, healthy)


def test_deployment_deleted(
    modelyard: Modelyard, healthy: Served, steady: SteadyClient, report: RowRecorder
) -> None:
    api, ns, name = modelyard.api, healthy.namespace, healthy.name
    old = api.get("apps/v1", "Deployment", ns, name)
    assert old is not None
    old_uid = old["metadata"]["uid"]
    gone = {p["metadata"]["name"] for p in ready_server_pods(modelyard, healthy)}

    def recreated() -> dict[str, Any] | None:
        dep = api.get("apps/v1", "Deployment", ns, name)
        return dep if dep is not None and dep["metadata"]["uid"] != old_uid else None

    with steady.window("Deployment deleted") as win:
        began = time.monotonic()
        # As `kubectl delete deployment` does: its ReplicaSet and pods go with it.
        delete_by_hand(modelyard.kubectl, "deployment", ns, name)
        dep, back = waited(recreated, WATCH_SECONDS)
        ready, _ = waited(lambda: new_pods_ready(modelyard, healthy, gone), SERVING_SECONDS)
        took = time.monotonic() - began
    stats = win.stats()
    report.add(
        "the serving Deployment deleted by hand (cascading)",
        (f"recreated after {back:.1f}s" if dep else "NOT recreated")
        + ("; new pods Ready 2/2" if ready else "; NOT Ready again"),
        took if ready else None,
        stats.lost(),
    )
    assert dep is not None, f"the Deployment did not come back within {WATCH_SECONDS:.0f}s"
    assert ready, status_of(api.md(ns, name))
    # Bounded by how long new pods take to start and load the model here.
    assert stats.longest_outage <= SERVING_SECONDS / 2, stats
    stays_ready(modelyard, healthy)


# --- trainer pods and Jobs lost ------------------------------------------------------------------


@dataclass
class PodLoss:
    name: str
    job_uid: str
    deleted_pod: str
    tj: dict[str, Any] | None  # the TrainingJob once finished (None if it never did)
    took: float


@pytest.fixture(scope="module")
def pod_loss(modelyard: Modelyard, fault_ns: FaultNamespace) -> Iterator[PodLoss]:
    """TrainingJob ``podloss`` whose trainer pod is deleted while it runs."""
    api, ns, name = modelyard.api, fault_ns.name, "podloss"
    modelyard.kubectl.apply(slow_training_job(name), namespace=ns)
    pod = training_trainer(modelyard, ns, name)
    job_uid = jobs_of(api, ns, name)[0]["metadata"]["uid"]
    api.delete("v1", "Pod", ns, pod["metadata"]["name"])
    tj, took = waited(lambda: tj_finished(api, ns, name), TRAINING_SECONDS)
    yield PodLoss(name, job_uid, pod["metadata"]["name"], tj, took)
    api.delete(GROUP_VERSION, "TrainingJob", ns, name)


def test_trainer_pod_deleted_mid_training(
    modelyard: Modelyard, fault_ns: FaultNamespace, pod_loss: PodLoss, report: RowRecorder
) -> None:
    api, ns = modelyard.api, fault_ns.name
    status = status_of(pod_loss.tj)
    model = status.get("model") or {}
    jobs = jobs_of(api, ns, pod_loss.name)
    versions = model_versions(fault_ns.models / pod_loss.name)
    report.add(
        "trainer pod deleted mid-training",
        f"phase {status.get('phase')}, attempts {status.get('attempts')}, "
        f"{len(jobs)} Job(s), model dirs {versions}",
        pod_loss.took if pod_loss.tj else None,
        "nothing" if versions == [model.get("version")] else f"model dirs {versions}",
    )
    assert status.get("phase") == "Succeeded", json.dumps(status, indent=1)
    assert [j["metadata"]["uid"] for j in jobs] == [pod_loss.job_uid], "the Job was replaced"
    assert versions == [model.get("version")], (versions, model)


def test_succeeded_training_outlives_its_pods_and_job(
    modelyard: Modelyard, fault_ns: FaultNamespace, pod_loss: PodLoss, report: RowRecorder
) -> None:
    """A Succeeded TrainingJob stays Succeeded with its model when the evidence goes: its
    trainer pods (PodGC, node loss), then its Job (TTL, by hand) -- and is not re-run."""
    api, kubectl, ns, name = modelyard.api, modelyard.kubectl, fault_ns.name, pod_loss.name
    if phase(pod_loss.tj) != "Succeeded":
        pytest.skip("TrainingJob podloss did not succeed (see the test before)")
    model = status_of(pod_loss.tj)["model"]

    def unchanged() -> bool:
        tj = api.tj(ns, name)
        return phase(tj) == "Succeeded" and status_of(tj).get("model") == model

    began = time.monotonic()
    for pod in trainer_pods_of(api, ns, name):
        api.delete("v1", "Pod", ns, pod["metadata"]["name"])
    wait_for("trainer pods gone", lambda: not trainer_pods_of(api, ns, name), timeout=60)
    touch(kubectl, "trainingjob", ns, name)
    flipped, _ = waited(lambda: not unchanged(), 3)
    after_pods = status_of(api.tj(ns, name))
    delete_by_hand(kubectl, "job", ns, jobs_of(api, ns, name)[0]["metadata"]["name"])
    wait_for("Job gone", lambda: not jobs_of(api, ns, name), timeout=60)
    touch(kubectl, "trainingjob", ns, name)
    time.sleep(3)
    after_job = status_of(api.tj(ns, name))
    rerun = jobs_of(api, ns, name)
    report.add(
        "Succeeded TrainingJob: its pods, then its Job deleted",
        f"without pods: phase {after_pods.get('phase')} "
        f"(lastFailure {(after_pods.get('lastFailure') or {}).get('reason')}); without Job: "
        f"phase {after_job.get('phase')}, {len(rerun)} new Job(s)",
        time.monotonic() - began,
        "model kept" if after_job.get("model") == model else "status.model LOST",
    )
    assert not flipped, (
        "deleting the trainer pods of a finished Job re-derived the status: "
        + json.dumps(after_pods, indent=1)
    )
    assert after_job.get("phase") == "Succeeded" and after_job.get("model") == model, after_job
    assert not rerun, "a Succeeded TrainingJob was re-run after its Job was deleted"
    holds("TrainingJob podloss still Succeeded with its model", unchanged, 2)


def test_job_deleted_mid_training(
    modelyard: Modelyard, fault_ns: FaultNamespace, report: RowRecorder
) -> None:
    """A Job deleted before its result was recorded: reported (Failed, JobDeleted), never
    silently re-run."""
    api, kubectl, ns, name = modelyard.api, modelyard.kubectl, fault_ns.name, "jobloss"
    kubectl.apply(slow_training_job(name), namespace=ns)
    try:
        training_trainer(modelyard, ns, name)
        job = jobs_of(api, ns, name)[0]
        delete_by_hand(kubectl, "job", ns, job["metadata"]["name"])

        def reported() -> dict[str, Any] | None:
            tj = api.tj(ns, name)
            failure = status_of(tj).get("lastFailure") or {}
            return tj if phase(tj) == "Failed" and failure.get("reason") == "JobDeleted" else None

        tj, took = waited(reported, WATCH_SECONDS)
        touch(kubectl, "trainingjob", ns, name)
        time.sleep(3)
        rerun = [
            j for j in jobs_of(api, ns, name) if j["metadata"]["uid"] != job["metadata"]["uid"]
        ]
        status = status_of(api.tj(ns, name))
        report.add(
            "Job deleted mid-training",
            f"phase {status.get('phase')}, lastFailure "
            f"{(status.get('lastFailure') or {}).get('reason')}, "
            f"{len(rerun)} Job(s) created again",
            took if tj else None,
            "the training attempt (reported)"
            if tj and not rerun
            else "silently re-run"
            if rerun
            else "not reported",
        )
        assert not rerun, (
            "the operator silently re-ran a TrainingJob whose Job was deleted: "
            + json.dumps(status, indent=1)
        )
        assert tj is not None, (
            f"not reported as Failed/JobDeleted within {WATCH_SECONDS:.0f}s: "
            + json.dumps(status, indent=1)
        )
        holds(
            "TrainingJob jobloss still Failed/JobDeleted",
            lambda: reported() is not None and not jobs_of(api, ns, name),
            2,
        )
    finally:
        api.delete(GROUP_VERSION, "TrainingJob", ns, name)


# --- the node's kubelet away ---------------------------------------------------------------------


def test_kubelet_stopped_and_restarted(
    modelyard: Modelyard,
    real_node: RealNode,
    healthy: Served,
    steady: SteadyClient,
    report: RowRecorder,
) -> None:
    """The kubelet stops for ``KUBELET_DOWN_SECONDS``; meanwhile a server pod is deleted (it
    cannot be torn down nor replaced until the kubelet is back). Status must say so, and the
    replacement must come once the kubelet returns."""
    api, ns, name = modelyard.api, healthy.namespace, healthy.name
    victim = ready_server_pods(modelyard, healthy)[0]["metadata"]["name"]
    said_not_ready = False
    with steady.window("kubelet stopped") as win:
        real_node.stop_kubelet()
        try:
            api.delete("v1", "Pod", ns, victim)
            deadline = time.monotonic() + KUBELET_DOWN_SECONDS
            while time.monotonic() < deadline:
                said_not_ready |= not condition_is(api.md(ns, name), "Ready")
                time.sleep(0.5)
        finally:
            real_node.start_kubelet()
        back = time.monotonic()
        ready, _ = waited(lambda: new_pods_ready(modelyard, healthy, {victim}), SERVING_SECONDS)
        took = time.monotonic() - back
    stats = win.stats()
    report.add(
        f"kubelet stopped {KUBELET_DOWN_SECONDS:.0f}s (a server pod deleted meanwhile), restarted",
        (
            "status said not Ready while a replica was missing"
            if said_not_ready
            else "status kept saying Ready with a replica missing"
        )
        + ("; replacement Ready, 2/2" if ready else "; NOT Ready 2/2 again"),
        took if ready else None,
        stats.lost(),
    )
    assert ready, status_of(api.md(ns, name))
    assert said_not_ready, "ModelDeployment said Ready while one of its two replicas was gone"
    assert stats.failed == 0, stats
    stays_ready(modelyard, healthy)


# --- a trainer out of memory, a full volume ------------------------------------------------------


def test_trainer_oomkilled(
    modelyard: Modelyard, fault_ns: FaultNamespace, report: RowRecorder
) -> None:
    """64 MiB: the trainer's imports alone (numpy, pandas, scikit-learn) take ~130 MiB of
    anonymous memory, so the kernel's OOM killer ends it whatever the estimator."""
    api, ns, name = modelyard.api, fault_ns.name, "oom"
    memory = {"memory": "64Mi"}
    modelyard.kubectl.apply(
        training_job(
            name,
            backoff_limit=0,
            resources={"requests": {"cpu": "100m", **memory}, "limits": memory},
        ),
        namespace=ns,
    )
    try:
        tj, took = waited(lambda: tj_finished(api, ns, name), TRAINING_SECONDS)
        status = status_of(tj)
        failure = status.get("lastFailure") or {}
        versions = model_versions(fault_ns.models / name)
        report.add(
            "trainer OOMKilled (limit 64Mi)",
            f"phase {status.get('phase')}, lastFailure {failure.get('reason')} "
            f"exit {failure.get('exitCode')}",
            took if tj else None,
            "nothing (no model, none claimed)"
            if not versions and not status.get("model")
            else f"model dirs {versions}",
        )
        assert phase(tj) == "Failed", json.dumps(status, indent=1)
        assert failure.get("reason") == "OOMKilled", failure
        assert failure.get("exitCode") == 137, failure
        assert "model" not in status and not versions, (status, versions)
        touch(modelyard.kubectl, "trainingjob", ns, name)
        holds(
            "TrainingJob oom still Failed/OOMKilled",
            lambda: (
                (s := status_of(api.tj(ns, name))).get("phase") == "Failed"
                and (s.get("lastFailure") or {}).get("reason") == "OOMKilled"
            ),
            3,
        )
    finally:
        api.delete(GROUP_VERSION, "TrainingJob", ns, name)


@contextlib.contextmanager
def full_volume(path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs at ``path``, filled up to the last byte."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0777", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        path.rmdir()
        pytest.skip(f"cannot mount a tmpfs for a full volume here: {mounted.stderr.strip()}")
    try:
        fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            with contextlib.suppress(OSError):  # ENOSPC: full
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        yield path
    finally:
        # Lazily: a finished trainer's mount namespace may linger for a moment.
        subprocess.run(["umount", "-l", str(path)], capture_output=True)
        with contextlib.suppress(OSError):
            path.rmdir()


def test_models_volume_full(
    modelyard: Modelyard, fault_ns: FaultNamespace, report: RowRecorder
) -> None:
    """The models volume is a full 64 KiB tmpfs (a hostPath PV on it): the trainer cannot
    write its model. It must fail saying why, leave no half-written version, claim no model."""
    api, ns, name, claim = modelyard.api, fault_ns.name, "full", "full-models"
    with full_volume(MODELS_ROOT / f"{ns}-full") as volume:
        pv = f"full-{ns}"
        api.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": pv, "labels": {"modelyard-test": "true"}},
                "spec": {
                    "capacity": {"storage": "64Ki"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": str(volume)},
                    "claimRef": {"namespace": ns, "name": claim},
                },
            }
        )
        api.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": claim, "namespace": ns},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "resources": {"requests": {"storage": "64Ki"}},
                },
            }
        )
        try:
            modelyard.kubectl.apply(
                training_job(name, backoff_limit=0, output={"storageUri": f"pvc://{claim}/{name}"}),
                namespace=ns,
            )
            tj, took = waited(lambda: tj_finished(api, ns, name), TRAINING_SECONDS)
            status = status_of(tj)
            failure = status.get("lastFailure") or {}
            written = sorted(str(p.relative_to(volume)) for p in volume.rglob("*"))
            report.add(
                "models volume full (64 KiB tmpfs hostPath PV, filled)",
                f"phase {status.get('phase')}, lastFailure {failure.get('reason')}: "
                f"{str(failure.get('message'))[:90]}",
                took if tj else None,
                f"nothing half-written (volume holds {written})",
            )
            assert phase(tj) == "Failed", json.dumps(status, indent=1)
            assert "No space left on device" in str(failure.get("message")), failure
            assert "model" not in status, status
            assert not [w for w in written if w.endswith(("model.skops", "metadata.json"))], written
        finally:
            api.delete(GROUP_VERSION, "TrainingJob", ns, name)
            wait_for(
                "the full volume's trainer pods gone",
                lambda: not trainer_pods_of(api, ns, name),
                timeout=60,
            )
            api.delete("v1", "PersistentVolumeClaim", ns, claim)
            api.delete("v1", "PersistentVolume", None, pv)


# --- a name someone else owns --------------------------------------------------------------------


def test_conflicting_service_not_taken_over(
    modelyard: Modelyard,
    served: Served,
    fault_operator: OperatorProcess,
    report: RowRecorder,
) -> None:
    """A user's own Service named like a new ModelDeployment: the operator must leave it
    exactly as it is and say NameConflict in the ModelDeployment's status (not Ready), with no
    exception in its log."""
    api, ns, name = modelyard.api, served.namespace, "clash"
    api.create(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": ns, "labels": {"app": "users-own"}},
            "spec": {
                "selector": {"app": "users-own"},
                "ports": [{"name": "web", "port": 8080, "targetPort": 8080}],
            },
        }
    )
    before = api.get("v1", "Service", ns, name)
    assert before is not None
    log_from = len(fault_operator.log_path.read_text(errors="replace").splitlines())
    try:
        modelyard.kubectl.apply(
            model_deployment(name, training_job=served.name, replicas=1), namespace=ns
        )

        def conflict() -> dict[str, Any] | None:
            md = api.md(ns, name)
            status = status_of(md)
            reasons = {c.get("reason") for c in status.get("conditions") or []}
            reasons.add((status.get("lastFailure") or {}).get("reason"))
            return md if "NameConflict" in reasons else None

        md, took = waited(conflict, WATCH_SECONDS)
        time.sleep(3)  # and it stays so through the reconciles that follow
        after = api.get("v1", "Service", ns, name)
        assert after is not None
        changed = {
            key: (before["metadata"].get(key), after["metadata"].get(key))
            for key in ("resourceVersion", "ownerReferences", "labels")
            if before["metadata"].get(key) != after["metadata"].get(key)
        }
        if before["spec"] != after["spec"]:
            changed["spec"] = (before["spec"], after["spec"])
        managers = {m.get("manager") for m in after["metadata"].get("managedFields") or []}
        errors = [
            line
            for line in fault_operator.log_path.read_text(errors="replace").splitlines()[log_from:]
            if "Traceback" in line or " ERROR " in line
        ]
        now = api.md(ns, name)
        report.add(
            "a user's Service named like the ModelDeployment",
            (
                "user's Service untouched"
                if not changed
                else f"user's Service CHANGED {sorted(changed)}"
            )
            + f"; MD phase {phase(now)}, Ready "
            + str((condition(now, "Ready") or {}).get("status"))
            + ("; NameConflict reported" if md else "; no NameConflict")
            + (f"; {len(errors)} error line(s) logged" if errors else ""),
            took if md and not changed else None,
            "nothing" if not changed else "the user's Service",
        )
        assert not changed, f"the user's Service was changed: {json.dumps(changed, default=str)}"
        assert "modelyard" not in managers, (
            f"the operator took fields of the user's Service: {managers}"
        )
        assert md is not None, "no NameConflict in status: " + json.dumps(status_of(now), indent=1)
        assert not condition_is(now, "Ready"), status_of(now)
        assert not errors, "\n".join(errors[:10])
    finally:
        api.delete(GROUP_VERSION, "ModelDeployment", ns, name)
        api.delete("v1", "Service", ns, name)
