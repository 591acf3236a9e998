"""manifests/monitoring against a real Prometheus on the real node: Prometheus scrapes the
model server pods and the operator while real traffic flows (in distribution, then shifted,
with some invalid requests), evaluates the PrometheusRule, and then every dashboard query and
every series selector of every rule returns data; the drift and training alerts are active,
the error alert is not.

Set MODELYARD_DASHBOARD_DATA=path.json to keep the dashboard's queries over the run, and
MODELYARD_DASHBOARD_DWELL=seconds to hold each traffic phase that long for a fuller picture
(hack/render-dashboard.py draws them: the README's picture). Neither changes what is checked."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
from pathlib import Path
from typing import Any

import pytest
from modelyard.naming import LABEL_ARM, LABEL_MODEL_DEPLOYMENT
from modelyard.serving import HTTP_PORT

from tests.cluster.operator_harness import (
    Modelyard,
    OperatorProcess,
    condition_is,
    model_deployment,
    phase,
    training_job,
    wait_for,
)
from tests.go_tools import REPO, go_run, prometheus_bin

from .faults.faultlib import send
from .node import RealNode
from .prometheus import Prometheus, Target
from .test_drift_real import MONITORING, drift, iris_rows

pytestmark = pytest.mark.e2e

DASHBOARD = REPO / "manifests" / "monitoring" / "dashboards" / "modelyard.json"
DWELL = float(os.environ.get("MODELYARD_DASHBOARD_DWELL", "0"))
RETRAINING = {  # configured, so its series exist; minDuration keeps it from running here
    "triggers": ["OnDrift"],
    "onDrift": {"minDuration": "1h"},
    "template": {"trainingJobRef": {"name": "iris"}},
}


class Traffic(threading.Thread):
    """Batches of 5 rows, ~10 requests a second, every 20th one invalid (two features, a 400);
    ``shift`` moves petal length (see test_drift_real.iris_rows) from when it is set."""

    def __init__(self, url: str) -> None:
        super().__init__(name="traffic", daemon=True)
        self.url, self.shift = url, 0.0
        self.sent = self.refused = 0
        self._halt = threading.Event()

    def run(self) -> None:
        seed = 0
        while not self._halt.wait(0.1):
            seed += 1
            try:
                if seed % 20 == 0:
                    send(self.url, [[1.0, 2.0]])
                else:
                    send(self.url, iris_rows(5, shift=self.shift, seed=seed))
                    self.sent += 1
            except urllib.error.HTTPError as error:
                self.refused += error.code == 400
            except OSError:
                pass

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def dashboard_queries(namespace: str) -> list[dict[str, str]]:
    """The dashboard's queries (deploy/grafana lists them) with its variables filled in as
    Grafana would for this namespace."""
    done = go_run(REPO / "deploy" / "grafana", str(DASHBOARD))
    assert done.returncode == 0, done.stderr[-3000:]
    queries = [json.loads(line) for line in done.stdout.splitlines()]
    for query in queries:
        query["expr"] = (
            query["expr"]
            .replace("$namespace", namespace)
            .replace("$modeldeployment", ".+")
            .replace("$__rate_interval", "20s")
        )
    return queries


def test_every_alert_and_dashboard_query_reads_real_series(
    modelyard: Modelyard,
    operator: OperatorProcess,
    ns: str,
    runtime_image: str,
    real_node: RealNode,
    models_dir: Path,
    tmp_path: Path,
) -> None:
    prometheus_bin()  # fail (CI) or skip before the slow part when it is not built
    api, kubectl = modelyard.api, modelyard.kubectl
    broken = {"estimator": "LogisticRegression", "hyperparameters": {"max_iter": -1}}
    kubectl.apply(
        training_job("iris"),
        training_job("broken", model=broken),
        model_deployment("iris", training_job="iris", monitoring=MONITORING, retraining=RETRAINING),
        namespace=ns,
    )
    show_pods = lambda: kubectl("get", "pods", "-n", ns, "-o", "wide")  # noqa: E731
    wait_for(
        "broken Failed",
        lambda: (t := api.tj(ns, "broken")) and phase(t) == "Failed",
        timeout=300,
        show=show_pods,
    )
    wait_for(
        "iris Ready",
        lambda: (m := api.md(ns, "iris")) is not None and condition_is(m, "Ready"),
        timeout=300,
        show=show_pods,
    )
    pods = api.list("v1", "Pod", ns, f"{LABEL_MODEL_DEPLOYMENT}=iris")
    servers = [
        Target(
            f"{p['status']['podIP']}:{HTTP_PORT}",
            {
                "namespace": ns,
                "pod": p["metadata"]["name"],
                "modeldeployment": "iris",
                "arm": p["metadata"]["labels"].get(LABEL_ARM, "stable"),
            },
        )
        for p in pods
        if p["status"].get("podIP")
    ]
    svc = api.get("v1", "Service", ns, "iris")
    assert svc is not None and servers
    url = f"http://{svc['spec']['clusterIP']}:80/v2/models/iris/infer"

    started = time.time()
    with Prometheus(tmp_path / "prometheus", servers, f"127.0.0.1:{operator.metrics_port}") as prom:
        traffic = Traffic(url)
        traffic.start()
        try:
            wait_for(
                "NoDrift on in-distribution traffic",
                lambda: drift(api.md(ns, "iris")).get("state") == "NoDrift",
                timeout=90,
                show=lambda: drift(api.md(ns, "iris")),
            )
            time.sleep(DWELL)
            traffic.shift = 1.5
            wait_for(
                "Drifting on shifted traffic",
                lambda: drift(api.md(ns, "iris")).get("state") == "Drifting",
                timeout=90,
                show=lambda: drift(api.md(ns, "iris")),
            )
            time.sleep(DWELL)
            assert all(prom.targets_up().values()), prom.targets_up()
            _every_dashboard_query_returns_data(prom, ns)
            _every_rule_reads_real_series(prom)
            _alerts_say_what_happened(prom, ns)
        finally:
            traffic.stop()
        assert traffic.sent > 50 and traffic.refused > 0, (traffic.sent, traffic.refused)
        if out := os.environ.get("MODELYARD_DASHBOARD_DATA"):
            _keep_dashboard_data(prom, ns, started, Path(out))


def _every_dashboard_query_returns_data(prom: Prometheus, namespace: str) -> None:
    queries = dashboard_queries(namespace)
    assert len(queries) >= 15

    def empty() -> list[str]:
        return [f"{q['panel']}: {q['expr']}" for q in queries if not prom.query(q["expr"])]

    # Rates need two scrapes in their window, the recording rule one evaluation after them.
    wait_for("every dashboard query has data", lambda: not empty(), timeout=60, show=empty)


def _every_rule_reads_real_series(prom: Prometheus) -> None:
    groups = prom.api("rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 9, [r["name"] for r in rules]
    assert all(rule["health"] == "ok" for rule in rules), rules
    assert all(prom.selectors(rule["query"]) for rule in rules), "every rule reads series"
    missing = [
        f"{rule['name']}: {selector}"
        for rule in rules
        for selector in prom.selectors(rule["query"])
        if not prom.query(selector)
    ]
    assert not missing, missing
    assert prom.query("modelyard:inference_requests:rate5m"), "the recording rule records"


def _alerts_say_what_happened(prom: Prometheus, namespace: str) -> None:
    def active() -> dict[str, dict[str, Any]]:
        return {
            a["labels"]["alertname"]: a
            for a in prom.alerts()
            if a["labels"].get("namespace") == namespace
        }

    wait_for(
        "drift and training alerts active",
        lambda: {"ModelyardDriftDetected", "ModelyardTrainingJobFailed"} <= set(active()),
        timeout=30,
        show=active,
    )
    alerts = active()
    assert alerts["ModelyardDriftDetected"]["labels"]["modeldeployment"] == "iris"
    assert alerts["ModelyardTrainingJobFailed"]["labels"]["trainingjob"] == "broken"
    assert alerts["ModelyardTrainingJobFailed"]["state"] == "firing"  # no `for`
    # The traffic was served: no server-side error alert; 5% refused is under the threshold.
    assert "ModelyardInferenceErrors" not in alerts and "ModelyardInferenceRefusals" not in alerts
    assert "ModelyardModelDeploymentDegraded" not in alerts


def _keep_dashboard_data(prom: Prometheus, namespace: str, start: float, out: Path) -> None:
    end = time.time()
    panels = [
        {**q, "series": prom.query_range(q["expr"], start, end, 2.0)}
        for q in dashboard_queries(namespace)
    ]
    out.write_text(json.dumps({"start": start, "end": end, "panels": panels}))
