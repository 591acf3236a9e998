"""A real Prometheus (hack/prometheus-binaries.sh) for the e2e tier: scrapes the given targets
every second, evaluates manifests/monitoring's rules every second, answers PromQL over HTTP.

The scrape config mirrors manifests/monitoring/podmonitors.yaml's relabelings by hand (no
Prometheus Operator runs here): a server target carries namespace, pod, modeldeployment and arm;
the operator target keeps its series' own labels (honor_labels)."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from modelyard_devcluster.processes import free_port

from tests.go_tools import REPO, prometheus_bin

RULES = REPO / "manifests" / "monitoring" / "prometheusrule.yaml"


@dataclass(frozen=True)
class Target:
    address: str  # host:port
    labels: dict[str, str]


class Prometheus:
    def __init__(self, workdir: Path, servers: list[Target], operator: str) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._servers, self._operator = servers, operator
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        rules = yaml.safe_load(RULES.read_text())["spec"]
        for group in rules["groups"]:
            group["interval"] = "1s"
        (self.workdir / "rules.yaml").write_text(yaml.safe_dump(rules))
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["rules.yaml"],
            "scrape_configs": [
                {
                    "job_name": "modelyard-servers",
                    "static_configs": [
                        {"targets": [t.address], "labels": t.labels} for t in self._servers
                    ],
                },
                {
                    "job_name": "modelyard-operator",
                    "honor_labels": True,
                    "static_configs": [{"targets": [self._operator]}],
                },
            ],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        log = (self.workdir / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                str(prometheus_bin() / "prometheus"),
                "--config.file=prometheus.yml",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"prometheus not ready in 30 s: {self.log_tail()}")

    def __exit__(self, *_: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "prometheus.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as answer:
            body = json.load(answer)
        if body.get("status") != "success":
            raise RuntimeError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        data = self.api("query_range", query=expr, start=str(start), end=str(end), step=str(step))
        result: list[dict[str, Any]] = data["result"]
        return result

    def selectors(self, expr: str) -> list[str]:
        """Every series selector in ``expr`` (as Prometheus parses it), as a query of its own."""
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") in ("vectorSelector", "matrixSelector") and "matchers" in node:
                    matchers = ", ".join(
                        f"{m['name']}{m['type']}{json.dumps(m['value'])}" for m in node["matchers"]
                    )
                    found.append(f"{{{matchers}}}")
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.api("parse_query", query=expr))
        return found

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self.api("alerts")["alerts"]
        return alerts

    def targets_up(self) -> dict[str, bool]:
        active = self.api("targets", state="active")["activeTargets"]
        return {t["scrapeUrl"]: t["health"] == "up" for t in active}
