"""The operator against a real control plane: fixtures and helpers for the cluster tier.

What the fixtures set up (once per session, on top of ``local_cluster``):

- ``modelyard_installed``: the CRDs from ``crds/`` and the RBAC from ``kubectl kustomize
  manifests/`` (Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding -- not the operator
  Deployment), then a kubeconfig holding a TokenRequest token of the operator's ServiceAccount.
  The operator talks to the API server only with that identity, so every test also proves the
  shipped RBAC is enough.
- ``operator``: ``python -m modelyard`` as a subprocess, exactly as in production but with the
  kubeconfig above, text logs to a file (printed when a test fails), a liveness endpoint on a
  free port and a resync interval of a few seconds. Stopped by PID.
- ``ns``: a fresh namespace per test, with a PersistentVolume pre-bound to the
  ``modelyard-models`` claim the pods mount (the scheduler refuses pods with an unbound claim).

kwok plays the node: it marks pods Running/Ready, but leaves trainer pods Running; the
``finish_trainer`` helper then writes the terminated container state and the trainer's
termination message into the pod status, as a kubelet would.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import config as kube_config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError
from modelyard_devcluster import LocalCluster, free_port, proc_start_time, terminate
from modelyard_devcluster.install import rbac_documents
from modelyard_runtime.contract import (
    Comparison,
    DatasetInfo,
    GateResult,
    ModelRef,
    TrainerResult,
    ValidationResult,
)

REPO = Path(__file__).resolve().parents[2]
# Where models_volume's hostPath PersistentVolumes live (a real directory on the real node).
MODELS_HOST_ROOT = Path("/tmp/modelyard-test")
OPERATOR_NAMESPACE = "modelyard-system"
OPERATOR_SA = "modelyard-operator"
RUNTIME_IMAGE = "modelyard-runtime:cluster-test"
MODELS_CLAIM = "modelyard-models"
GROUP_VERSION = "modelyard.io/v1alpha1"
RESYNC_SECONDS = float(os.environ.get("MODELYARD_TEST_RESYNC_SECONDS", "3"))
# How long the GitOps test watches for status/annotation churn (a churn check, not a timer).
CHURN_SECONDS = float(os.environ.get("MODELYARD_CHURN_SECONDS", "60"))

_current_operator: OperatorProcess | None = None


# --- kubectl and the API ---------------------------------------------------------------------


class Kubectl:
    """The cluster's own kubectl with a given kubeconfig."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
                f"{operator_log_section()}"
            )
        return result

    def __call__(self, *args: str, input: str | None = None) -> str:
        return self.run(*args, input=input).stdout

    def apply(self, *objects: dict[str, Any], namespace: str | None = None) -> str:
        """Server-side apply as the user (field manager ``kubectl``), as GitOps tools do."""
        docs = "\n---\n".join(json.dumps(o) for o in objects)
        args = ["apply", "--server-side", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        return self(*args, input=docs)


def plugin(kubectl: Kubectl, *args: str) -> str:
    """``kubectl modelyard ...`` as a user runs it: kubectl finds the installed
    ``kubectl-modelyard`` console script on PATH and hands it the arguments."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        "KUBECONFIG": str(kubectl.kubeconfig),
    }
    done = subprocess.run(
        [str(kubectl.binary), "modelyard", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


class Api:
    """The admin's view of the cluster (plain dicts), for assertions and for playing kubelet."""

    def __init__(self, kubeconfig: Path) -> None:
        self.client = kube_config.new_client_from_config(config_file=str(kubeconfig))
        self.dynamic = DynamicClient(self.client)

    def resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict | None:
        try:
            found = self.resource(api_version, kind).get(name=name, namespace=namespace)
        except NotFoundError:
            return None
        return dict(found.to_dict())

    def list(
        self, api_version: str, kind: str, namespace: str | None, selector: str | None = None
    ) -> list[dict[str, Any]]:
        found = self.resource(api_version, kind).get(namespace=namespace, label_selector=selector)
        return [dict(i) for i in found.to_dict().get("items") or []]

    def tj(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(GROUP_VERSION, "TrainingJob", namespace, name)

    def md(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(GROUP_VERSION, "ModelDeployment", namespace, name)

    def patch(
        self, api_version: str, kind: str, namespace: str | None, name: str, body: dict
    ) -> dict[str, Any]:
        found = self.resource(api_version, kind).patch(
            body=body, name=name, namespace=namespace, content_type="application/merge-patch+json"
        )
        return dict(found.to_dict())

    def patch_pod_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.resource("v1", "Pod").status.patch(
            body={"status": status},
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        with contextlib.suppress(NotFoundError):
            self.resource(api_version, kind).delete(name=name, namespace=namespace)

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        created = self.resource(obj["apiVersion"], obj["kind"]).create(
            body=obj, namespace=meta.get("namespace")
        )
        return dict(created.to_dict())


# --- the operator process --------------------------------------------------------------------


class OperatorProcess:
    """``python -m modelyard`` with the operator's own credentials; logs to ``log_path``."""

    def __init__(self, kubeconfig: Path, log_path: Path, **env: str) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.extra_env = env
        self.popen: subprocess.Popen[bytes] | None = None
        self.start_time: int | None = None
        self.port = 0
        self.metrics_port = 0
        self.starts = 0

    @property
    def pid(self) -> int:
        assert self.popen is not None, "operator not started"
        return self.popen.pid

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            MODELYARD_RUNTIME_IMAGE=RUNTIME_IMAGE,
            MODELYARD_IMAGE_PULL_POLICY="IfNotPresent",
            MODELYARD_DEFAULT_STORAGE_URI=f"pvc://{MODELS_CLAIM}",
            MODELYARD_LOG_FORMAT="text",
            MODELYARD_LOG_LEVEL="INFO",
            MODELYARD_RESYNC_INTERVAL_SECONDS=str(RESYNC_SECONDS),
            MODELYARD_ALLOWED_IMAGES="my/runtime:2",
            MODELYARD_LIVENESS_ENDPOINT=f"http://127.0.0.1:{self.port}/healthz",
            MODELYARD_METRICS_HOST="127.0.0.1",
            MODELYARD_METRICS_PORT=str(self.metrics_port),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 60) -> None:
        assert self.popen is None or self.popen.poll() is not None, "already running"
        self.port, self.metrics_port = free_port(), free_port()
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== operator start #{self.starts} =====\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "modelyard"],
                cwd=REPO,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.start_time = proc_start_time(self.popen.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"operator exited with {self.popen.returncode}:\n{self.log_tail()}"
                )
            if self.live():
                return
            time.sleep(0.3)
        raise AssertionError(f"operator not live after {timeout}s:\n{self.log_tail()}")

    def metrics(self) -> str:
        """The operator's own /metrics page."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def live(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (kopf shuts down cleanly), SIGKILL after a grace period; by PID only."""
        if self.popen is not None and self.start_time is not None:
            terminate(self.popen.pid, self.start_time, 15.0, self.popen)

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a node failure would: no cleanup runs."""
        assert self.popen is not None
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def peak_rss_kib(self) -> int | None:
        """The operator's peak resident set (VmHWM) in KiB, while it runs."""
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return None

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no operator log)"
        return "\n".join(text.splitlines()[-lines:])

    def errors(self) -> list[str]:
        """Tracebacks and ERROR lines the operator logged, except kopf's retries of a watch
        on a CRD the API server is still initialising (it starts right after the install)."""
        text = self.log_path.read_text(errors="replace")
        return [
            line
            for line in text.splitlines()
            if ("Traceback" in line or " ERROR " in line)
            and "storage is (re)initializing" not in line
        ]


def operator_log_section(lines: int = 60) -> str:
    if _current_operator is None:
        return ""
    return f"\n--- operator log tail ({_current_operator.log_path}) ---\n" + (
        _current_operator.log_tail(lines)
    )


# --- installing Modelyard --------------------------------------------------------------------


def install_crds(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "-k", str(REPO / "crds"))
    # `kubectl wait` (and a jsonpath filter) fails outright on a CRD that has no
    # status.conditions yet (a fresh one on a busy API server): read the whole object.
    for crd in ("trainingjobs.modelyard.io", "modeldeployments.modelyard.io"):
        wait_for(
            f"CRD {crd} Established",
            lambda crd=crd: condition_is(
                json.loads(kubectl("get", "crd", crd, "-o", "json")), "Established"
            ),
            timeout=60,
        )


def install_rbac(kubectl: Kubectl) -> list[dict[str, Any]]:
    """Namespace, ServiceAccount, ClusterRole and binding from the shipped kustomize base."""
    rendered = kubectl("kustomize", str(REPO / "manifests"))
    chosen = rbac_documents(rendered)
    kubectl.apply(*chosen)
    return chosen


class Modelyard:
    """Everything a test needs: the admin's kubectl and API, the operator's kubectl."""

    def __init__(self, cluster: LocalCluster, work: Path) -> None:
        self.cluster = cluster
        self.kubectl = Kubectl(cluster.bin_dir / "kubectl", cluster.kubeconfig)
        install_crds(self.kubectl)
        install_rbac(self.kubectl)
        self.operator_kubeconfig = cluster.service_account_kubeconfig(
            OPERATOR_NAMESPACE, OPERATOR_SA, work / "operator.kubeconfig"
        )
        self.as_operator = Kubectl(cluster.bin_dir / "kubectl", self.operator_kubeconfig)
        self.api = Api(cluster.kubeconfig)


@pytest.fixture(scope="session")
def modelyard(local_cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Modelyard:
    return Modelyard(local_cluster, Path(tmp_path_factory.mktemp("modelyard")))


@pytest.fixture(scope="session")
def operator(modelyard: Modelyard) -> Iterator[OperatorProcess]:
    global _current_operator
    log_path = modelyard.cluster.work_dir / "operator.log"
    proc = OperatorProcess(modelyard.operator_kubeconfig, log_path)
    _current_operator = proc
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        _current_operator = None
        print(f"\noperator log: {log_path}", file=sys.stderr)
    # Every test passed on its own; the operator must also not have hidden an exception.
    if errors := proc.errors():
        shown = "\n".join(errors[:20])
        pytest.fail(f"the operator logged {len(errors)} error line(s) ({log_path}):\n{shown}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the operator's log tail to every failed cluster test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _current_operator is not None:
        report.sections.append(
            (f"operator log tail ({_current_operator.log_path})", _current_operator.log_tail(120))
        )


# --- namespaces and storage ------------------------------------------------------------------


def models_volume(api: Api, namespace: str, *, claim: bool = True) -> None:
    """A hostPath PV pre-bound to ``<namespace>/modelyard-models`` (and the claim itself)."""
    api.create(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"models-{namespace}", "labels": {"modelyard-test": "true"}},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(MODELS_HOST_ROOT / namespace)},
                "claimRef": {"namespace": namespace, "name": MODELS_CLAIM},
            },
        }
    )
    if claim:
        api.create(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": MODELS_CLAIM, "namespace": namespace},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": "",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            }
        )


@pytest.fixture
def ns(modelyard: Modelyard, operator: OperatorProcess) -> Iterator[str]:
    """A fresh namespace (default ServiceAccount present, models volume bound)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    api = modelyard.api
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(
        f"ServiceAccount default in {name}",
        lambda: api.get("v1", "ServiceAccount", name, "default"),
        timeout=30,
    )
    models_volume(api, name)
    yield name
    api.delete("v1", "Namespace", None, name)
    api.delete("v1", "PersistentVolume", None, f"models-{name}")


# --- waiting -----------------------------------------------------------------------------------


def dump(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=False, width=120) if obj is not None else "(absent)"


def wait_for(
    what: str,
    check: Callable[[], Any],
    *,
    timeout: float = 60.0,
    interval: float = 0.25,
    show: Callable[[], Any] | None = None,
) -> Any:
    """Poll ``check`` until it returns something truthy; on timeout fail with ``what``, the
    object ``show`` returns and the operator's log tail."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            shown = ""
            if show is not None:
                try:
                    shown = "\n--- object ---\n" + dump(show())
                except Exception as e:  # the dump must not hide the timeout
                    shown = f"\n(could not show the object: {e})"
            pytest.fail(
                f"timed out after {timeout:.0f}s waiting for {what}{shown}{operator_log_section()}",
                pytrace=False,
            )
        time.sleep(interval)


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return None


def condition_is(obj: dict[str, Any] | None, type_: str, status: str = "True") -> bool:
    found = condition(obj, type_)
    return found is not None and found.get("status") == status


def phase(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("status") or {}).get("phase")


# --- manifests -------------------------------------------------------------------------------


def training_job(
    name: str,
    *,
    estimator: str = "LogisticRegression",
    backoff_limit: int = 2,
    gate_min: float = 0.9,
    **spec: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataset": {"builtin": "iris"},
        "model": {"estimator": estimator, "hyperparameters": {"max_iter": 500}},
        "validation": {
            "testSize": 0.2,
            "metrics": ["accuracy", "f1"],
            "gate": [{"metric": "accuracy", "min": gate_min}],
        },
        "seed": 42,
        "output": {"storageUri": f"pvc://{MODELS_CLAIM}/{name}"},
        "backoffLimit": backoff_limit,
    }
    body.update(spec)
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "TrainingJob",
        "metadata": {"name": name},
        "spec": body,
    }


def model_deployment(
    name: str, *, training_job: str | None = None, storage_uri: str | None = None, **spec: Any
) -> dict[str, Any]:
    model: dict[str, Any] = {}
    if training_job is not None:
        model["trainingJobRef"] = {"name": training_job}
    if storage_uri is not None:
        model["storageUri"] = storage_uri
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": model, **spec},
    }


# --- playing the kubelet for trainer pods ----------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_env(pod: dict[str, Any], container: str = "trainer") -> dict[str, str]:
    for c in pod["spec"]["containers"]:
        if c["name"] == container:
            return {e["name"]: e.get("value", "") for e in c.get("env") or []}
    raise AssertionError(f"no container {container} in pod {pod['metadata']['name']}")


def trainer_pods(api: Api, namespace: str, job: str) -> list[dict[str, Any]]:
    return api.list("v1", "Pod", namespace, f"job-name={job}")


def running_trainer_pod(
    api: Api, namespace: str, job: str, *, exclude: tuple[str, ...] = (), timeout: float = 60
) -> dict[str, Any]:
    """The Job's trainer pod once kwok has it Running (a new one when ``exclude`` lists old)."""

    def find() -> dict[str, Any] | None:
        for pod in trainer_pods(api, namespace, job):
            if pod["metadata"]["name"] in exclude or pod["metadata"].get("deletionTimestamp"):
                continue
            if (pod.get("status") or {}).get("phase") == "Running":
                return pod
        return None

    return wait_for(
        f"a Running trainer pod of Job {namespace}/{job}",
        find,
        timeout=timeout,
        show=lambda: api.get("batch/v1", "Job", namespace, job),
    )


def trainer_result(
    pod: dict[str, Any],
    *,
    reason: str = "Succeeded",
    accuracy: float = 0.9667,
    gate_min: float = 0.9,
    message: str = "",
    comparison: Comparison | None = None,
) -> TrainerResult:
    """What ``modelyard-train`` would write for ``pod`` (its own storage URI and version)."""
    env = pod_env(pod)
    version = env["MODELYARD_MODEL_VERSION"]
    uri = f"{env['MODELYARD_STORAGE_URI']}/{version}"
    passed = accuracy >= gate_min
    validation = ValidationResult(
        passed=passed,
        results=[GateResult(metric="accuracy", value=accuracy, min=gate_min, passed=passed)],
    )
    trained = reason in ("Succeeded", "GateNotMet")
    return TrainerResult(
        reason=reason,  # type: ignore[arg-type]
        message=message or (f"trained {version}" if reason == "Succeeded" else reason),
        task="classification" if trained else None,
        model=ModelRef(
            uri=uri,
            version=version,
            sha256=hashlib.sha256(uri.encode()).hexdigest(),
            auto_runtime="onnx",  # what the trainer reports for the iris pipeline
            onnx=True,
        )
        if reason == "Succeeded"
        else None,
        metrics={"accuracy": accuracy, "f1": round(accuracy - 0.004, 4)} if trained else {},
        best_params={"C": 1.0} if trained else None,
        dataset=DatasetInfo(
            source="builtin:iris", digest="sha256:" + "ab" * 32, rows=150, columns=4
        )
        if trained
        else None,
        validation=validation if trained else None,
        comparison=comparison,
    )


def finish_trainer(
    api: Api,
    pod: dict[str, Any],
    *,
    exit_code: int,
    reason: str | None = None,
    message: str | None = None,
) -> None:
    """Write the pod status a kubelet writes when the trainer container ends."""
    meta = pod["metadata"]
    container = pod["spec"]["containers"][0]
    started = (pod.get("status") or {}).get("startTime") or _now()
    ended = _now()
    terminal = "Succeeded" if exit_code == 0 else "Failed"
    terminated: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "startedAt": started,
        "finishedAt": ended,
        "containerID": f"containerd://{uuid.uuid4().hex}",
    }
    if message:
        terminated["message"] = message
    not_ready = {
        "status": "False",
        "reason": "PodCompleted" if exit_code == 0 else "PodFailed",
        "lastTransitionTime": ended,
    }
    status = {
        "phase": terminal,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
            {"type": "Initialized", "status": "True", "lastTransitionTime": started},
            {"type": "Ready", **not_ready},
            {"type": "ContainersReady", **not_ready},
        ],
        "containerStatuses": [
            {
                "name": container["name"],
                "image": container["image"],
                "imageID": "",
                "ready": False,
                "started": False,
                "restartCount": 0,
                "state": {"terminated": terminated},
            }
        ],
    }
    api.patch_pod_status(meta["namespace"], meta["name"], status)


def succeed_trainer(api: Api, pod: dict[str, Any], **result: Any) -> TrainerResult:
    said = trainer_result(pod, **result)
    finish_trainer(api, pod, exit_code=0, message=said.to_termination_message())
    return said


# --- small assertions --------------------------------------------------------------------------


def events_for(api: Api, namespace: str, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in api.list("v1", "Event", namespace)
        if (e.get("involvedObject") or {}).get("name") == name
    ]


def resource_versions(api: Api, namespace: str, kinds: tuple[tuple[str, str], ...]) -> dict:
    found = {}
    for api_version, kind in kinds:
        for item in api.list(api_version, kind, namespace):
            found[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return found
