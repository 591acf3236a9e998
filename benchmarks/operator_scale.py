"""How the operator keeps up with many ModelDeployments at once, against a floor.

Against a fresh local control plane (devcluster/modelyard_devcluster: real etcd, kube-apiserver,
controller-manager, scheduler; kwok marks pods Ready), for each N:

- **operator**: N ModelDeployments with a ``storageUri`` (no training), server-side applied one
  after the other by a plain client (the official Python client) in a fresh namespace, with
  ``python -m modelyard`` running as its own ServiceAccount (a fresh process per N, so its peak
  RSS is per N). Measured from the first create: when each Deployment first exists (watch
  ADDED) and when each ModelDeployment is first ``Ready=True``; p50/p99 per object, time until
  all, and the operator's VmHWM.
- **floor**: the same number of Deployments + Services, server-side applied one after the other
  by a plain client (the same official client and field manager the operator uses), in another
  fresh namespace: when each Deployment exists, when each is Available (the same kwok readiness
  the ModelDeployments wait on).

Ratios operator/floor are printed and written with the raw numbers to
``benchmarks/results/operator-scale-<date>[-quick].json``.

    python benchmarks/operator_scale.py --n 100 --n 500
    python benchmarks/operator_scale.py --quick        # N = 20, a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


from modelyard_devcluster import LocalCluster, default_bin_dir  # noqa: E402

from tests.cluster.operator_harness import (  # noqa: E402
    Modelyard,
    OperatorProcess,
    condition_is,
    model_deployment,
    models_volume,
)

RESULTS = REPO / "benchmarks" / "results"


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(times: dict[str, float], n: int) -> dict[str, Any]:
    values = list(times.values())
    return {
        "count": len(values),
        "expected": n,
        "p50_s": percentile(values, 50),
        "p99_s": percentile(values, 99),
        "all_s": max(values) if len(values) == n else None,
        "mean_s": statistics.fmean(values) if values else None,
    }


class Recorder:
    """Watches one kind in one namespace from a thread; records when ``done(obj)`` first held
    for each object name, relative to ``t0``."""

    def __init__(self, modelyard: Modelyard, api_version: str, kind: str, namespace: str,
                 done: Any) -> None:  # fmt: skip
        self.resource = modelyard.api.resource(api_version, kind)
        self.namespace = namespace
        self.done = done
        self.t0 = 0.0
        self.times: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, t0: float) -> None:
        self.t0 = t0
        self._thread.start()

    def _run(self) -> None:
        rv = None
        while not self._stop.is_set():
            try:
                stream = self.resource.watch(
                    namespace=self.namespace, resource_version=rv, timeout=5
                )
                for event in stream:
                    obj = event["raw_object"]
                    rv = obj["metadata"]["resourceVersion"]
                    name = obj["metadata"]["name"]
                    if name not in self.times and self.done(obj):
                        self.times[name] = time.monotonic() - self.t0
                    if self._stop.is_set():
                        return
            except Exception as e:  # a watch may expire; start again from a fresh list
                print(f"  (watch restarted: {e})", file=sys.stderr)
                rv = None

    def wait(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.times) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        return len(self.times) >= n

    def stop(self) -> None:
        self._stop.set()


def deployment_available(obj: dict[str, Any]) -> bool:
    return condition_is(obj, "Available")


def fresh_namespace(modelyard: Modelyard, name: str) -> None:
    modelyard.api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    deadline = time.monotonic() + 30
    while modelyard.api.get("v1", "ServiceAccount", name, "default") is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no default ServiceAccount in {name}")
        time.sleep(0.2)
    models_volume(modelyard.api, name)


def run_operator(modelyard: Modelyard, work: Path, n: int, timeout: float) -> dict[str, Any]:
    ns = f"bench-md-{n}"
    fresh_namespace(modelyard, ns)
    proc = OperatorProcess(
        modelyard.operator_kubeconfig,
        work / f"operator-{n}.log",
        MODELYARD_RESYNC_INTERVAL_SECONDS="300",
        MODELYARD_LOG_LEVEL="WARNING",
    )
    proc.start()
    try:
        rss_idle = proc.peak_rss_kib()
        deployments = Recorder(modelyard, "apps/v1", "Deployment", ns, lambda o: True)
        ready = Recorder(
            modelyard, "modelyard.io/v1alpha1", "ModelDeployment", ns,
            lambda o: condition_is(o, "Ready"),
        )  # fmt: skip
        objects = [
            model_deployment(f"m{i:04d}", storage_uri=f"pvc://modelyard-models/m/v{i}")
            for i in range(n)
        ]
        resource = modelyard.api.resource("modelyard.io/v1alpha1", "ModelDeployment")
        t0 = time.monotonic()
        deployments.start(t0)
        ready.start(t0)
        for obj in objects:  # the same client and method as the floor's creates
            resource.server_side_apply(
                body=obj, name=obj["metadata"]["name"], namespace=ns,
                field_manager="benchmark", force_conflicts=True,
            )  # fmt: skip
        applied = time.monotonic() - t0
        all_deployments = deployments.wait(n, timeout)
        all_ready = ready.wait(n, timeout)
        deployments.stop()
        ready.stop()
        rss_peak = proc.peak_rss_kib()
        errors = proc.errors()
    finally:
        proc.stop()
    return {
        "namespace": ns,
        "apply_s": applied,
        "deployment_exists": summary(deployments.times, n),
        "model_deployment_ready": summary(ready.times, n),
        "complete": all_deployments and all_ready,
        "operator_rss_idle_kib": rss_idle,
        "operator_rss_peak_kib": rss_peak,
        "operator_error_lines": len(errors),
        "operator_log": str(proc.log_path),
    }


def run_floor(
    modelyard: Modelyard, n: int, timeout: float, ns: str | None = None
) -> dict[str, Any]:
    """N Deployment + Service server-side applies by a plain client, one after the other."""
    from modelyard import FIELD_MANAGER
    from modelyard.api import ModelDeployment, ModelStatus
    from modelyard.serving import ServerConfig, build_deployment, build_service
    from modelyard.settings import OperatorSettings

    ns = ns or f"bench-raw-{n}"
    fresh_namespace(modelyard, ns)
    config = ServerConfig.of(OperatorSettings())
    exists = Recorder(modelyard, "apps/v1", "Deployment", ns, lambda o: True)
    available = Recorder(modelyard, "apps/v1", "Deployment", ns, deployment_available)
    api = modelyard.api
    created = api.get("v1", "Namespace", None, ns) or {}
    manifests = []
    for i in range(n):
        body = model_deployment(f"m{i:04d}", storage_uri=f"pvc://modelyard-models/m/v{i}")
        body["metadata"].update(namespace=ns, uid=created["metadata"]["uid"], generation=1)
        md = ModelDeployment.parse(body)
        model = ModelStatus(uri=f"pvc://modelyard-models/m/v{i}", version=f"v{i}")
        dep = build_deployment(md, model, config, replicas=md.spec.desired_replicas)
        svc = build_service(md)
        for obj in (dep, svc):
            obj["metadata"].pop("ownerReferences")  # no owner object exists for the floor
        manifests.append((dep, svc))
    deployments = api.resource("apps/v1", "Deployment")
    services = api.resource("v1", "Service")
    t0 = time.monotonic()
    exists.start(t0)
    available.start(t0)
    for dep, svc in manifests:
        for resource, obj in ((deployments, dep), (services, svc)):
            resource.server_side_apply(
                body=obj, name=obj["metadata"]["name"], namespace=ns,
                field_manager=FIELD_MANAGER, force_conflicts=True,
            )  # fmt: skip
    issued = time.monotonic() - t0
    all_exist = exists.wait(n, timeout)
    all_available = available.wait(n, timeout)
    exists.stop()
    available.stop()
    return {
        "namespace": ns,
        "issue_s": issued,
        "deployment_exists": summary(exists.times, n),
        "deployment_available": summary(available.times, n),
        "complete": all_exist and all_available,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, action="append", help="objects per round (repeatable)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: N = 20")
    parser.add_argument("--timeout", type=float, default=900.0, help="per phase, seconds")
    parser.add_argument("--keep", type=Path, default=None, help="cluster work dir to keep")
    parser.add_argument("--out", type=Path, default=None, help="results file (default: dated)")
    args = parser.parse_args()
    sizes = args.n or ([20] if args.quick else [100, 500])

    work = args.keep or Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "kube_version": os.environ.get("KUBE_VERSION", "v1.34.4"),
        "method": __doc__,
        "rounds": [],
    }
    with LocalCluster(default_bin_dir(), work / "cluster") as cluster:
        modelyard = Modelyard(cluster, work)
        # Warm-up (discarded): the first Deployments of a fresh cluster wait on caches and
        # informers coming up, which would bias whichever side ran first.
        run_floor(modelyard, 10, args.timeout, ns="bench-warmup")
        for n in sizes:
            print(f"N={n}: floor (raw Deployment+Service applies) ...", file=sys.stderr)
            floor = run_floor(modelyard, n, args.timeout)
            print(f"N={n}: operator (ModelDeployments) ...", file=sys.stderr)
            ours = run_operator(modelyard, work, n, args.timeout)
            row = {
                "n": n,
                "operator": ours,
                "floor": floor,
                "ratio_all_deployments_exist": ratio(
                    ours["deployment_exists"]["all_s"], floor["deployment_exists"]["all_s"]
                ),
                "ratio_all_ready_vs_available": ratio(
                    ours["model_deployment_ready"]["all_s"],
                    floor["deployment_available"]["all_s"],
                ),
                "ratio_p50_ready_vs_available": ratio(
                    ours["model_deployment_ready"]["p50_s"],
                    floor["deployment_available"]["p50_s"],
                ),
            }
            results["rounds"].append(row)
            print_row(row)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    out = args.out or RESULTS / f"operator-scale-{stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return (
        0
        if all(r["operator"]["complete"] and r["floor"]["complete"] for r in results["rounds"])
        else 1
    )


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def print_row(row: dict[str, Any]) -> None:
    ours, floor = row["operator"], row["floor"]
    rss = ours["operator_rss_peak_kib"]
    print(
        f"N={row['n']}\n"
        f"  operator: all Deployments exist {fmt(ours['deployment_exists']['all_s'])} s "
        f"(p50 {fmt(ours['deployment_exists']['p50_s'])}, "
        f"p99 {fmt(ours['deployment_exists']['p99_s'])}); "
        f"all Ready {fmt(ours['model_deployment_ready']['all_s'])} s "
        f"(p50 {fmt(ours['model_deployment_ready']['p50_s'])}, "
        f"p99 {fmt(ours['model_deployment_ready']['p99_s'])}); "
        f"peak RSS {rss / 1024 if rss else 0:.0f} MiB\n"
        f"  floor:    all Deployments exist {fmt(floor['deployment_exists']['all_s'])} s "
        f"(p50 {fmt(floor['deployment_exists']['p50_s'])}, "
        f"p99 {fmt(floor['deployment_exists']['p99_s'])}); "
        f"all Available {fmt(floor['deployment_available']['all_s'])} s "
        f"(p50 {fmt(floor['deployment_available']['p50_s'])}, "
        f"p99 {fmt(floor['deployment_available']['p99_s'])})\n"
        f"  ratio operator/floor: exist {row['ratio_all_deployments_exist']}, "
        f"ready/available {row['ratio_all_ready_vs_available']} "
        f"(p50 {row['ratio_p50_ready_vs_available']})"
    )


if __name__ == "__main__":
    sys.exit(main())
