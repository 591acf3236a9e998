"""Faults of the operator and the control plane, with the model served on the real node.

Each test breaks one thing once, then checks that nothing was lost: the served Service
answered every request of the steady client (the data plane does not need the control plane),
the operator is still running, and it sees changes again -- a probe ModelDeployment and a
probe (suspended) TrainingJob get their status within ``WATCH_SECONDS``, well under the
operator's resync, so only a live watch can have delivered them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from modelyard_devcluster import LocalCluster
from modelyard_runtime.contract import sha256_of

from tests.cluster.operator_harness import (
    GROUP_VERSION,
    Modelyard,
    OperatorProcess,
    phase,
)

from .faultlib import (
    REPLICAS,
    WATCH_SECONDS,
    AdminHTTP,
    RowRecorder,
    Served,
    StallProxy,
    SteadyClient,
    etcd_compact_all,
    handled_since,
    holds,
    jobs_of,
    log_lines,
    md_ready,
    model_versions,
    probe_md,
    probe_md_answered,
    probe_tj,
    probe_tj_answered,
    status_of,
    touch,
    waited,
    watch_live,
)

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

# How long the hang test keeps the operator's connections frozen, and how soon after they
# heal it must have recovered: hung calls and hung watches dropped, status converged.
STALL_SECONDS = 10.0
HANG_RECOVERY_SECONDS = float(os.environ.get("MODELYARD_FAULTS_HANG_RECOVERY_SECONDS", "60"))
REFUSED_BLIP_SECONDS = 2.0  # see test_etcd_restarted
PROD_RESYNC_SECONDS = 300  # the operator's default MODELYARD_RESYNC_INTERVAL_SECONDS
CR_PATHS = {
    "ModelDeployment": f"/apis/{GROUP_VERSION}/modeldeployments",
    "TrainingJob": f"/apis/{GROUP_VERSION}/trainingjobs",
}


@pytest.fixture
def probes(modelyard: Modelyard, served: Served) -> Iterator[list[str]]:
    """Names of probe objects a test creates; deleted after it."""
    names: list[str] = []
    yield names
    for name in names:
        modelyard.api.delete(GROUP_VERSION, "ModelDeployment", served.namespace, name)
        modelyard.api.delete(GROUP_VERSION, "TrainingJob", served.namespace, name)


def apply_probes(modelyard: Modelyard, namespace: str, name: str, probes: list[str]) -> None:
    probes.append(name)
    modelyard.kubectl.apply(probe_md(name), probe_tj(name), namespace=namespace)


def probes_answered(modelyard: Modelyard, namespace: str, name: str) -> bool:
    api = modelyard.api
    return probe_md_answered(api, namespace, name) and probe_tj_answered(api, namespace, name)


def restart_if_wedged(operator: OperatorProcess, recovered: bool) -> str:
    """A failed recovery must not take the rest of the suite down with it."""
    running = operator.popen is not None and operator.popen.poll() is None
    if recovered and running:
        return ""
    if running:
        operator.kill()
    operator.start()
    return " (the operator was then restarted so the suite can go on)"


def test_operator_sigkill_mid_reconcile(
    modelyard: Modelyard,
    served: Served,
    steady: SteadyClient,
    fault_operator: OperatorProcess,
    probes: list[str],
    report: RowRecorder,
) -> None:
    """``served`` trained its model through a SIGKILL of the operator right after it had
    created the Job: one Job (the same one), one model, status converged and staying so.
    Then the operator is SIGKILLed again while serving: no request is lost."""
    api, ns, name = modelyard.api, served.namespace, served.name
    jobs = jobs_of(api, ns, name)
    tj = api.tj(ns, name)
    status = status_of(tj)
    model = status.get("model") or {}
    versions = model_versions(served.models_dir)
    killed = served.killed_status
    report.add(
        "operator SIGKILL mid-reconcile (Job just created), restarted",
        f"status at the kill: phase={killed.get('phase')}, jobName={killed.get('jobName')}; "
        f"after: {len(jobs)} Job(s), same uid: "
        f"{[j['metadata']['uid'] for j in jobs] == [served.killed_job_uid]}, "
        f"phase {phase(tj)}, model dirs {versions}",
        served.kill_to_converged,
        "n/a (nothing served yet)",
    )
    assert [j["metadata"]["uid"] for j in jobs] == [served.killed_job_uid], (
        "the restarted operator must keep the Job it created before the kill, not add one: "
        + json.dumps([j["metadata"] for j in jobs], indent=1, default=str)
    )
    assert phase(tj) == "Succeeded", json.dumps(status, indent=1)
    assert versions == [model.get("version")], (versions, model)
    version_dir = served.models_dir / model["version"]
    metadata = json.loads((version_dir / "metadata.json").read_text())
    assert metadata["modelVersion"] == model["version"]
    assert sha256_of(version_dir / "model.skops") == metadata["sha256"]
    assert model["uri"].endswith("/" + model["version"])
    md = api.md(ns, name)
    assert (status_of(md).get("model") or {}).get("version") == model["version"]

    # Stays true: another reconcile (a touched TrainingJob) changes nothing.
    touch(modelyard.kubectl, "trainingjob", ns, name)
    holds(
        "TrainingJob iris Succeeded with the same model",
        lambda: (
            (t := api.tj(ns, name)) is not None
            and phase(t) == "Succeeded"
            and status_of(t).get("model") == model
        ),
        3,
        show=lambda: status_of(api.tj(ns, name)),
    )

    # Killed again while serving (a touched Deployment makes it reconcile the ModelDeployment).
    with steady.window("operator SIGKILL while serving") as win:
        touch(modelyard.kubectl, "deployment", ns, name)
        fault_operator.kill()
        began = time.monotonic()
        fault_operator.start()
        # The new process acts: it answers a new object, and the served one is still Ready.
        apply_probes(modelyard, ns, "probe-killed", probes)
        seen, _ = waited(lambda: probes_answered(modelyard, ns, "probe-killed"), WATCH_SECONDS)
        ready = md_ready(api, ns, name, REPLICAS)
        took = time.monotonic() - began
    stats = win.stats()
    report.add(
        "operator SIGKILL while serving, restarted",
        f"restarted; probes reconciled: {bool(seen)}; ModelDeployment "
        + ("Ready 2/2" if ready else "NOT Ready"),
        took if seen and ready else None,
        stats.lost(),
    )
    assert seen, f"the restarted operator did not reconcile new objects in {WATCH_SECONDS}s"
    assert ready, json.dumps(status_of(api.md(ns, name)), indent=1)
    assert stats.failed == 0, stats


def test_apiserver_restarted(
    modelyard: Modelyard,
    e2e_cluster: LocalCluster,
    healthy: Served,
    steady: SteadyClient,
    fault_operator: OperatorProcess,
    probes: list[str],
    report: RowRecorder,
) -> None:
    ns = healthy.namespace
    with steady.window("kube-apiserver restart") as win:
        down = e2e_cluster.restart_component("kube-apiserver")
        back = time.monotonic()
        apply_probes(modelyard, ns, "probe-apiserver", probes)
        seen, _ = waited(lambda: probes_answered(modelyard, ns, "probe-apiserver"), WATCH_SECONDS)
        took = time.monotonic() - back
    stats = win.stats()
    alive = fault_operator.popen is not None and fault_operator.popen.poll() is None
    report.add(
        "kube-apiserver restarted",
        f"apiserver down+starting {down:.1f}s; operator "
        + ("kept running" if alive else "EXITED")
        + ("; probes reconciled" if seen else f"; probes NOT reconciled within {WATCH_SECONDS}s"),
        took if seen else None,
        stats.lost(),
    )
    restarted = restart_if_wedged(fault_operator, alive and bool(seen))
    assert alive, "the operator exited when the API server restarted" + restarted
    assert seen, f"probes not reconciled within {WATCH_SECONDS}s of the restart{restarted}"
    assert stats.failed == 0, stats
    assert md_ready(modelyard.api, ns, healthy.name, REPLICAS)


def test_watch_expired_410_gone(
    modelyard: Modelyard,
    e2e_cluster: LocalCluster,
    healthy: Served,
    steady: SteadyClient,
    fault_operator: OperatorProcess,
    probes: list[str],
    report: RowRecorder,
) -> None:
    """Every resourceVersion the operator's watches hold is made to expire: the API server is
    stopped, etcd is compacted past everything it handed out, the API server comes back (its
    watch cache starts afresh). A watch from a version listed before the restart must get
    "410 Gone" (the proof the fault happened); the operator must re-list and see changes."""
    api, ns = modelyard.api, healthy.namespace
    admin = AdminHTTP(e2e_cluster.kubeconfig)
    before = {kind: admin.resource_version(path) for kind, path in CR_PATHS.items()}
    compacted: list[int] = []
    with steady.window("watch expired") as win:
        e2e_cluster.restart_component(
            "kube-apiserver",
            while_down=lambda: compacted.append(etcd_compact_all(e2e_cluster.etcd_url)),
        )
        back = time.monotonic()
        answers = {kind: admin.first_watch_event(CR_PATHS[kind], rv) for kind, rv in before.items()}
        apply_probes(modelyard, ns, "probe-gone", probes)
        seen, _ = waited(lambda: probes_answered(modelyard, ns, "probe-gone"), WATCH_SECONDS)
        # A change to an existing object, not only a new one, must get through as well.
        modelyard.kubectl.apply(probe_md("probe-gone", ref="still-missing"), namespace=ns)
        updated, _ = waited(
            lambda: probe_md_answered(api, ns, "probe-gone", ref="still-missing"), WATCH_SECONDS
        )
        took = time.monotonic() - back
    stats = win.stats()
    gone = {
        kind: bool(a and a.get("type") == "ERROR" and (a.get("object") or {}).get("code") == 410)
        for kind, a in answers.items()
    }
    alive = fault_operator.popen is not None and fault_operator.popen.poll() is None
    report.add(
        "watch expired (410 Gone): apiserver stopped, etcd compacted, apiserver started",
        f"etcd compacted to revision {compacted[0] if compacted else '?'}; a watch from the "
        f"pre-restart versions got 410: {gone}; operator "
        + ("kept running" if alive else "EXITED")
        + f"; new probes seen: {bool(seen)}, update seen: {bool(updated)}",
        took if (seen and updated) else None,
        stats.lost(),
    )
    restarted = restart_if_wedged(fault_operator, alive and bool(seen and updated))
    assert all(gone.values()), f"the fault did not happen: watches from {before} got {answers}"
    assert alive, "the operator exited after its watches expired" + restarted
    assert seen and updated, f"changes not seen within {WATCH_SECONDS}s after 410{restarted}"
    assert stats.failed == 0, stats


def test_etcd_restarted(
    modelyard: Modelyard,
    e2e_cluster: LocalCluster,
    healthy: Served,
    steady: SteadyClient,
    fault_operator: OperatorProcess,
    probes: list[str],
    report: RowRecorder,
) -> None:
    ns = healthy.namespace

    def service_uid() -> str | None:
        svc = modelyard.api.get("v1", "Service", ns, healthy.name)
        return None if svc is None else str(svc["metadata"]["uid"])

    uid_before = service_uid()
    with steady.window("etcd restart") as win:
        # Down for a few seconds, long enough for the operator's calls to fail meanwhile.
        down = e2e_cluster.restart_component("etcd", while_down=lambda: time.sleep(3))
        back = time.monotonic()
        apply_probes(modelyard, ns, "probe-etcd", probes)
        seen, _ = waited(lambda: probes_answered(modelyard, ns, "probe-etcd"), WATCH_SECONDS)
        took = time.monotonic() - back
    stats = win.stats()
    same_service = service_uid() == uid_before
    alive = fault_operator.popen is not None and fault_operator.popen.poll() is None
    report.add(
        "etcd restarted",
        f"etcd down {down:.1f}s; operator "
        + ("kept running" if alive else "EXITED")
        + ("; probes reconciled" if seen else f"; probes NOT reconciled in {WATCH_SECONDS}s")
        + ("" if same_service else "; the Service was RE-CREATED"),
        took if seen else None,
        stats.lost(),
    )
    restarted = restart_if_wedged(fault_operator, alive and bool(seen))
    assert alive, "the operator exited when etcd restarted" + restarted
    assert seen, f"probes not reconciled within {WATCH_SECONDS}s of etcd's restart{restarted}"
    # One CI run (of many; never in 3 local repeats) saw the Service refuse connections for
    # ~1 s around etcd's restart: 11 of 174 requests, all "connection refused" (kube-proxy's
    # REJECT of a Service without ready endpoints, or a new ClusterIP not yet programmed: the
    # Service-deleted fault looks the same), so no server saw them. The cause was not
    # reproduced. The operator must not have re-created the Service; a short refusal blip
    # otherwise is tolerated; a timeout, a 5xx, a wrong answer or a longer outage fails.
    assert same_service, "the Service was re-created across etcd's restart"
    blip = set(stats.errors) <= {"refused"} and stats.longest_outage < REFUSED_BLIP_SECONDS
    assert stats.failed == 0 or blip, stats


def test_hanging_apiserver_connection(
    modelyard: Modelyard,
    healthy: Served,
    steady: SteadyClient,
    fault_operator: OperatorProcess,
    apiserver_proxy: StallProxy,
    probes: list[str],
    report: RowRecorder,
) -> None:
    """The operator's connections to the API server hang (the proxy forwards nothing and
    closes nothing) for ``STALL_SECONDS``; then new connections work again but the hung ones
    stay hung, as after a NAT or load balancer lost its state. Within
    ``HANG_RECOVERY_SECONDS`` of the healing the operator must have given up on its hung calls
    and watches by itself: the changes made during and after the stall are in status, and
    its watches deliver events again (a touched Service runs its handler)."""
    ns, name = healthy.namespace, healthy.name
    recovered = False
    # The production resync (minutes, not the suite's 60 s): what recovers here recovered by
    # itself, not because the periodic resync happened to come by.
    resync = fault_operator.extra_env.get("MODELYARD_RESYNC_INTERVAL_SECONDS")
    fault_operator.stop()
    fault_operator.extra_env["MODELYARD_RESYNC_INTERVAL_SECONDS"] = str(PROD_RESYNC_SECONDS)
    fault_operator.start()
    try:
        assert watch_live(
            fault_operator, modelyard.kubectl, "service", ns, name, "server_service_changed", 20
        ), "the restarted operator's watches are not live before the fault"
        with steady.window("hanging apiserver connection") as win:
            frozen = apiserver_proxy.stall()
            apply_probes(modelyard, ns, "probe-hang-during", probes)
            # Not seen while stalled: the proxy really is the operator's only way in.
            early, _ = waited(
                lambda: probes_answered(modelyard, ns, "probe-hang-during"), STALL_SECONDS
            )
            apiserver_proxy.resume()
            healed = time.monotonic()
            apply_probes(modelyard, ns, "probe-hang-after", probes)
            # Seconds from the healing until each change reached status, and until a touched
            # Service got through a watch again (touched anew every 5 s).
            seen: dict[str, float] = {}
            mark, touched = -1, 0.0
            while time.monotonic() - healed < HANG_RECOVERY_SECONDS and len(seen) < 3:
                now = time.monotonic()
                for probe in ("probe-hang-during", "probe-hang-after"):
                    if probe not in seen and probes_answered(modelyard, ns, probe):
                        seen[probe] = now - healed
                if "watch" not in seen:
                    if mark >= 0 and handled_since(fault_operator, mark, "server_service_changed"):
                        seen["watch"] = now - healed
                    elif now - touched >= 5:
                        mark, touched = log_lines(fault_operator), now
                        touch(modelyard.kubectl, "service", ns, name)
                time.sleep(0.5)
            took = max(seen.values()) if len(seen) == 3 else None
        recovered = took is not None

        def when(what: str) -> str:
            at = seen.get(what)
            return f"{at:.0f}s after healing" if at is not None else "NOT within the bound"

        stats = win.stats()
        report.add(
            "slow/hanging API server connection (proxy stalls, hung sockets never closed)",
            f"{frozen} open connection(s) frozen for {STALL_SECONDS:.0f}s "
            f"({apiserver_proxy.frozen_total} in all); change made during the stall in status "
            f"{when('probe-hang-during')}, change made after it {when('probe-hang-after')}; "
            f"watches delivering again {when('watch')} (bound {HANG_RECOVERY_SECONDS:.0f}s)",
            took,
            stats.lost(),
        )
        assert not early, "the operator saw a change while its connections hung: not a fault"
        assert "probe-hang-during" in seen and "probe-hang-after" in seen, (
            f"changes not in status within {HANG_RECOVERY_SECONDS:.0f}s after the connection "
            f"healed (resync every {PROD_RESYNC_SECONDS}s): hung calls were not given up"
        )
        assert "watch" in seen, (
            f"the operator's watches still hung {HANG_RECOVERY_SECONDS:.0f}s after the "
            "connection healed: a touched Service ran no handler (kopf's watch client timeout "
            "is what ends a watch on a half-open connection)"
        )
        assert stats.failed == 0, stats
    finally:
        apiserver_proxy.resume()
        if recovered:
            fault_operator.stop()
        else:
            fault_operator.kill()  # SIGTERM's clean shutdown may itself hang on a dead socket
        if resync is not None:
            fault_operator.extra_env["MODELYARD_RESYNC_INTERVAL_SECONDS"] = resync
        fault_operator.start()
