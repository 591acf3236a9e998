"""manifests/monitoring: the alerts pass promtool (check rules, and test rules on synthetic
series), the dashboard passes Grafana's schema (deploy/grafana, Grafana's Foundation SDK), the
component builds with kustomize over the base, and every series the rules and the dashboard
read is one the servers, the operator or a recording rule actually produce.

That each expression returns data from real servers is the e2e tier's
(tests/e2e/test_monitoring_real.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from modelyard.operator_metrics import OperatorMetrics
from modelyard.status_metrics import StatusMetrics
from modelyard_devcluster import default_bin_dir
from modelyard_runtime.serve.metrics import ServerMetrics

from tests.go_tools import REPO, go_run, prometheus_bin, unavailable

MONITORING = REPO / "manifests" / "monitoring"
DASHBOARD = MONITORING / "dashboards" / "modelyard.json"


def rule_groups() -> dict[str, Any]:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert rule["kind"] == "PrometheusRule"
    return rule["spec"]


def dashboard_queries() -> list[dict[str, str]]:
    done = go_run(REPO / "deploy" / "grafana", str(DASHBOARD))
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_promtool_checks_and_tests_the_rules(tmp_path: Path) -> None:
    promtool = prometheus_bin() / "promtool"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule_groups()))
    shutil.copy(MONITORING / "tests" / "rules-test.yaml", tmp_path)
    checked = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rules = sum(len(group["rules"]) for group in rule_groups()["groups"])
    assert f"SUCCESS: {rules} rules found" in checked.stdout, checked.stdout
    tested = subprocess.run(
        [promtool, "test", "rules", "rules-test.yaml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_test() -> None:
    alerts = {r["alert"] for g in rule_groups()["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((MONITORING / "tests" / "rules-test.yaml").read_text())["tests"]
    tested = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])}
    assert alerts == tested


def test_the_dashboard_passes_grafanas_schema() -> None:
    queries = dashboard_queries()
    board = json.loads(DASHBOARD.read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len(queries) == sum(len(p["targets"]) for p in panels)


def test_the_dashboard_checker_refuses_a_bad_dashboard(tmp_path: Path) -> None:
    board = json.loads(DASHBOARD.read_text())
    board["panels"][1]["targets"][0]["exprr"] = board["panels"][1]["targets"][0].pop("expr")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(board))
    done = go_run(REPO / "deploy" / "grafana", str(bad))
    assert done.returncode == 1 and "unexpected field 'exprr'" in done.stderr, done.stderr


def _produced() -> set[str]:
    """Every series name the servers and the operator expose (samples: _total, _bucket...)."""
    names = set()
    for metrics in (ServerMetrics(), OperatorMetrics()):
        for family in metrics.registry.collect():
            names |= {
                family.name,
                *(f"{family.name}{s}" for s in ("_total", "_bucket", "_count", "_sum")),
            }
    for family in StatusMetrics().describe():
        names.add(family.name)
    return names


SERIES = re.compile(r"\b(modelyard[a-z0-9_:]*)")


def test_every_series_read_is_produced() -> None:
    groups = rule_groups()["groups"]
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    produced = _produced() | recorded
    exprs = [r["expr"] for g in groups for r in g["rules"]]
    exprs += [q["expr"] for q in dashboard_queries()]
    board = json.loads(DASHBOARD.read_text())
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    read = {name for expr in exprs for name in SERIES.findall(expr)}
    assert read, "no expressions found"
    assert read <= produced, sorted(read - produced)


def test_the_component_builds_over_the_base(tmp_path: Path) -> None:
    kubectl = default_bin_dir() / "kubectl"
    if not kubectl.is_file():
        unavailable(f"{kubectl} missing (hack/kube-binaries.sh)")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(REPO / "manifests", overlay)],
                "components": [os.path.relpath(MONITORING, overlay)],
            }
        )
    )
    done = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    objects = list(yaml.safe_load_all(done.stdout))
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {
        ("PodMonitor", "modelyard-servers"),
        ("PodMonitor", "modelyard-operator"),
        ("PrometheusRule", "modelyard"),
        ("ConfigMap", "modelyard-dashboard"),
        ("Deployment", "modelyard-operator"),
    } <= kinds, kinds
    (dashboard,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "modelyard-dashboard"
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["modelyard.json"]) == json.loads(DASHBOARD.read_text())
    # The operator PodMonitor's port is one the operator's pod declares.
    (operator,) = [o for o in objects if o["kind"] == "Deployment"]
    ports = {
        p["name"] for c in operator["spec"]["template"]["spec"]["containers"] for p in c["ports"]
    }
    (monitor,) = [
        o
        for o in objects
        if o["metadata"]["name"] == "modelyard-operator" and o["kind"] == "PodMonitor"
    ]
    assert {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]} <= ports
