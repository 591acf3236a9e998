"""Fixtures of the fault-injection suite: the e2e tier's ONE session cluster and real node
(inherited from tests/e2e/conftest.py: this package sits under it, so ``e2e_cluster``,
``real_node``, ``runtime_image`` and the harness's ``modelyard`` are the very same session
instances -- a second LocalCluster could not get the machine's only node).

Package-scoped, built once for every fault test:

- ``apiserver_proxy``: a ``StallProxy`` in front of the API server; the operator's kubeconfig
  points at it, so the hang test can freeze the operator's connections (and only its).
- ``fault_operator``: the operator as a host process (as in tests/e2e) with a long resync
  (``RESYNC_SECONDS``), so anything that converges faster was driven by a live watch. The
  harness's session operator, if a tier before started one, is paused meanwhile: two
  operators would fight over the same objects.
- ``fault_ns``: a namespace with the models volume (a hostPath PV on a real directory).
- ``served``: TrainingJob ``iris`` trained -- through an operator SIGKILL right after it
  created the Job (``test_operator_sigkill_mid_reconcile`` checks what that left) -- and
  ModelDeployment ``iris`` serving it on two replicas.
- ``steady``: a client sending 10 inference requests a second to the Service's ClusterIP for
  the whole suite; each test counts the failures of its own window. A host firewall rule
  (``CLUSTER_IP_GUARD``) keeps requests to a not-yet-programmed ClusterIP on this machine.

Per test, ``healthy`` starts each fault from a Ready stack and an operator whose watches are
live, so one test's leftovers never decide another's verdict; ``report`` adds the test's rows
to the table printed at the end of the session (and written to ``MODELYARD_FAULTS_REPORT``).

Run: ``python -m pytest tests/e2e/faults`` (or ``-m faults``; with ``tests`` or
``tests/e2e`` it shares their session). Knobs: ``MODELYARD_FAULTS_RESYNC_SECONDS`` (60),
``MODELYARD_FAULTS_WATCH_SECONDS`` (20), ``MODELYARD_FAULTS_HANG_RECOVERY_SECONDS`` (60).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from modelyard_devcluster import SERVICE_CIDR, LocalCluster

from tests.cluster import operator_harness as harness
from tests.cluster.operator_harness import (
    Modelyard,
    OperatorProcess,
    model_deployment,
    phase,
    training_job,
    wait_for,
)

from .faultlib import (
    MODELS_ROOT,
    REPLICAS,
    REPORT,
    RESYNC_SECONDS,
    SERVED,
    FaultNamespace,
    RowRecorder,
    Served,
    StallProxy,
    SteadyClient,
    create_namespace,
    jobs_of,
    md_ready,
    server_pods_of,
    service_url,
    status_of,
    tj_finished,
    watch_live,
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault injection on the e2e cluster and its real node (slow)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fault tests last: the rest of the session then never runs on a control plane this
    suite has just restarted (they share one cluster and one node)."""
    here = Path(__file__).parent
    items.sort(key=lambda item: here in Path(str(item.path)).parents)


# --- the operator, behind a proxy ----------------------------------------------------------------


@pytest.fixture(scope="package")
def apiserver_proxy(e2e_cluster: LocalCluster) -> Iterator[StallProxy]:
    proxy = StallProxy(e2e_cluster.address, e2e_cluster.api_port).start()
    yield proxy
    proxy.close()


@pytest.fixture(scope="package")
def fault_operator(
    modelyard: Modelyard,
    runtime_image: str,
    apiserver_proxy: StallProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    work = Path(tmp_path_factory.mktemp("faults"))
    # The operator's own ServiceAccount token, but its server is the proxy (the apiserver's
    # certificate names 127.0.0.1, so TLS verifies through a TCP proxy on another port).
    config = json.loads(modelyard.operator_kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = apiserver_proxy.url
    kubeconfig = work / "operator-via-proxy.kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    kubeconfig.chmod(0o600)

    paused = harness._current_operator
    if paused is not None and paused.popen is not None and paused.popen.poll() is None:
        paused.stop()
    else:
        paused = None
    proc = OperatorProcess(
        kubeconfig,
        work / "operator.log",
        MODELYARD_RESYNC_INTERVAL_SECONDS=str(RESYNC_SECONDS),
    )
    harness._current_operator = proc  # failed tests show its log tail
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        print(f"\nfault suite operator log: {proc.log_path}", file=sys.stderr)
        harness._current_operator = paused
        if paused is not None:
            paused.start()


# --- a namespace with a models volume ------------------------------------------------------------


@pytest.fixture(scope="package")
def fault_ns(modelyard: Modelyard, fault_operator: OperatorProcess) -> Iterator[FaultNamespace]:
    api = modelyard.api
    name = f"faults-{uuid.uuid4().hex[:6]}"
    models = MODELS_ROOT / name
    models.mkdir(parents=True, exist_ok=True)
    models.chmod(0o777)  # the trainer runs as UID 10001
    create_namespace(api, name)
    harness.models_volume(api, name)
    yield FaultNamespace(name, models)
    api.delete("v1", "Namespace", None, name)
    api.delete("v1", "PersistentVolume", None, f"models-{name}")
    shutil.rmtree(models, ignore_errors=True)


@pytest.fixture(scope="package")
def served(
    modelyard: Modelyard, fault_operator: OperatorProcess, fault_ns: FaultNamespace
) -> Served:
    api, kubectl, ns = modelyard.api, modelyard.kubectl, fault_ns.name
    kubectl.apply(
        training_job(SERVED),
        model_deployment(SERVED, training_job=SERVED, replicas=REPLICAS),
        namespace=ns,
    )
    # SIGKILL the moment the operator has created the Job: it is then between applying the
    # Job and writing the status that names it.
    job = wait_for(
        "the operator created the Job of TrainingJob iris",
        lambda: jobs_of(api, ns, SERVED),
        timeout=60,
        interval=0.05,
    )[0]
    fault_operator.kill()
    killed_at = time.monotonic()
    killed_status = status_of(api.tj(ns, SERVED))
    fault_operator.start()
    tj = wait_for(
        "TrainingJob iris finished after the operator was SIGKILLed and restarted",
        lambda: tj_finished(api, ns, SERVED),
        timeout=300,
        show=lambda: {"tj": api.tj(ns, SERVED), "jobs": jobs_of(api, ns, SERVED)},
    )
    assert phase(tj) == "Succeeded", json.dumps(status_of(tj), indent=2)
    wait_for(
        "ModelDeployment iris Ready on two replicas",
        lambda: md_ready(api, ns, SERVED, REPLICAS),
        timeout=240,
        show=lambda: {"md": api.md(ns, SERVED), "pods": server_pods_of(api, ns, SERVED)},
    )
    return Served(
        namespace=ns,
        name=SERVED,
        model=dict(status_of(tj)["model"]),
        models_dir=fault_ns.models / SERVED,
        killed_status=killed_status,
        killed_job_uid=str(job["metadata"]["uid"]),
        kill_to_converged=time.monotonic() - killed_at,
    )


# Traffic to a ClusterIP that kube-proxy has not (or no longer) programmed would leave the
# machine by the default route; this rule rejects it on the host instead. It sits in filter
# OUTPUT, after kube-proxy's DNAT in nat OUTPUT, so programmed ClusterIPs are not affected.
CLUSTER_IP_GUARD = [
    "OUTPUT", "-d", SERVICE_CIDR,
    "-m", "comment", "--comment", "modelyard-faults: ClusterIPs stay on this host",
    "-j", "REJECT",
]  # fmt: skip


@pytest.fixture(scope="package")
def steady(modelyard: Modelyard, served: Served) -> Iterator[SteadyClient]:
    subprocess.run(["iptables", "-I", *CLUSTER_IP_GUARD], check=True, capture_output=True)
    api = modelyard.api
    client = SteadyClient(lambda: service_url(api, served.namespace, served.name)).start()
    try:
        wait_for("the first answer through the Service", client.last_ok, timeout=30)
        yield client
    finally:
        client.stop()
        subprocess.run(["iptables", "-D", *CLUSTER_IP_GUARD], capture_output=True)


@pytest.fixture
def healthy(
    modelyard: Modelyard,
    served: Served,
    steady: SteadyClient,
    fault_operator: OperatorProcess,
    request: pytest.FixtureRequest,
) -> Served:
    """Each test starts from a serving stack (Ready on two replicas, the client answered) and
    an operator whose watches are live: a fault an earlier test left behind (e.g. a watch
    still hung) must not decide this test. Restarting it then is written in the report."""
    api = modelyard.api
    wait_for(
        "ModelDeployment iris Ready on two replicas before the fault",
        lambda: md_ready(api, served.namespace, served.name, REPLICAS),
        timeout=120,
        show=lambda: api.md(served.namespace, served.name),
    )
    wait_for("the steady client answered before the fault", steady.last_ok, timeout=30)
    if not watch_live(
        fault_operator,
        modelyard.kubectl,
        "service",
        served.namespace,
        served.name,
        "server_service_changed",
        timeout=10,
    ):
        fault_operator.kill()
        fault_operator.start()
        RowRecorder(request.node.nodeid).add(
            "(before this test)",
            "the operator's Service watch was dead (left by an earlier fault): operator restarted",
            "n/a",
            "n/a",
        )
    return served


# --- the report --------------------------------------------------------------------------------


@pytest.fixture
def report(request: pytest.FixtureRequest) -> RowRecorder:
    return RowRecorder(request.node.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    result = outcome.get_result()
    if result.when == "call":
        for row in REPORT.rows_of(item.nodeid):
            row.passed = result.passed


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT.rows:
        return
    text = REPORT.markdown()
    terminalreporter.section("fault injection: fault -> what happened -> converge -> lost")
    terminalreporter.write(text)
    with contextlib.suppress(OSError):
        path = Path(os.environ.get("MODELYARD_FAULTS_REPORT", "/tmp/modelyard-faults-report.md"))
        path.write_text(text)
        terminalreporter.write_line(f"(also written to {path})")
