"""Canary rollouts on a real API server (kwok plays the kubelet): a new model starts a canary
Deployment beside the stable one behind the same Service; with no traffic every check is
Inconclusive, so the step holds (never passes, never fails) until ``inconclusiveTimeout``
sends all traffic back to stable; the rejected model is not retried until the spec approves
it; the spec going back to the stable model ends a canary. Status, conditions, Events and the
printer columns say so at each step.

kwok's pods answer no HTTP, so the monitor's reads of their /metrics fail here and no
request is ever counted: exactly the low-traffic case. Promotion and rollback on measured
errors and latency are proven on the real node (tests/e2e/test_canary_real.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .operator_harness import (
    GROUP_VERSION,
    MODELS_CLAIM,
    Modelyard,
    condition,
    condition_is,
    events_for,
    model_deployment,
    phase,
    plugin,
    wait_for,
)

pytestmark = pytest.mark.cluster

V1 = (f"pvc://{MODELS_CLAIM}/iris/v1", "1" * 64)
V2 = (f"pvc://{MODELS_CLAIM}/iris/v2", "2" * 64)
ROLLOUT = {
    "strategy": "Canary",
    "canary": {
        "steps": [50],
        "stepDuration": "2s",
        "analysis": {"interval": "1s", "minRequests": 10, "inconclusiveTimeout": "8s"},
    },
}


def rollout(md: dict[str, Any] | None) -> dict[str, Any]:
    return ((md or {}).get("status") or {}).get("rollout") or {}


def model(uri_sha: tuple[str, str]) -> dict[str, Any]:
    return {"storageUri": uri_sha[0], "sha256": uri_sha[1]}


def test_a_canary_without_traffic_holds_then_goes_back_to_stable(
    modelyard: Modelyard, ns: str
) -> None:
    api, kubectl = modelyard.api, modelyard.kubectl
    body = model_deployment("iris", storage_uri=V1[0], replicas=2, rollout=ROLLOUT)
    body["spec"]["model"]["sha256"] = V1[1]
    kubectl.apply(body, namespace=ns)
    md = wait_for(
        "iris Ready on v1",
        lambda: (m := api.md(ns, "iris")) and condition_is(m, "Ready") and m,
        show=lambda: api.md(ns, "iris"),
    )
    assert rollout(md)["phase"] == "Idle" and rollout(md)["stable"]["sha256"] == V1[1]
    assert api.get("apps/v1", "Deployment", ns, "iris-canary") is None

    # A new model: a canary of two pods beside the two stable ones (50%).
    api.patch(GROUP_VERSION, "ModelDeployment", ns, "iris", {"spec": {"model": model(V2)}})
    canary = wait_for(
        "the canary Deployment",
        lambda: api.get("apps/v1", "Deployment", ns, "iris-canary"),
        show=lambda: rollout(api.md(ns, "iris")),
    )
    assert canary["spec"]["replicas"] == 2
    annotations = canary["spec"]["template"]["metadata"]["annotations"]
    assert annotations["modelyard.io/model-sha256"] == V2[1]
    stable = api.get("apps/v1", "Deployment", ns, "iris")
    assert stable is not None
    assert (
        stable["spec"]["template"]["metadata"]["annotations"]["modelyard.io/model-sha256"]
        == (V1[1])
    )
    service = api.get("v1", "Service", ns, "iris")
    assert service is not None
    selector = ",".join(f"{k}={v}" for k, v in service["spec"]["selector"].items())
    md = wait_for(
        "an Inconclusive check while the canary's pods are ready",
        lambda: (
            (m := api.md(ns, "iris"))
            and (rollout(m).get("lastAnalysis") or {}).get("verdict") == "Inconclusive"
            and m
        ),
        show=lambda: rollout(api.md(ns, "iris")),
    )
    state = rollout(md)
    assert (state["phase"], state["step"], state["steps"], state["desiredWeight"]) == (
        "Progressing",
        1,
        1,
        50,
    )
    assert "too few requests" in state["lastAnalysis"]["reason"], state
    assert state["failedChecks"] == 0, "no data is never a failure"
    ready = condition(md, "Ready")
    assert ready is not None and (ready["status"], ready["reason"]) == ("False", "CanaryInProgress")
    assert phase(md) == "Progressing"
    assert md["status"]["model"]["sha256"] == V1[1], "status.model is the stable model"
    wait_for(
        "the Service selecting both arms' pods",
        lambda: (
            {
                (p["metadata"].get("labels") or {}).get("modelyard.io/arm", "stable")
                for p in api.list("v1", "Pod", ns, selector)
            }
            == {"stable", "canary"}
        ),
    )

    # No conclusive check within inconclusiveTimeout: traffic back to stable.
    md = wait_for(
        "RolledBack for lack of traffic",
        lambda: (m := api.md(ns, "iris")) and rollout(m).get("phase") == "RolledBack" and m,
        timeout=40,
        show=lambda: rollout(api.md(ns, "iris")),
    )
    state = rollout(md)
    assert state["reason"] == "InsufficientTraffic", state
    wait_for(
        "the canary Deployment gone",
        lambda: api.get("apps/v1", "Deployment", ns, "iris-canary") is None,
    )
    md = wait_for(
        "Degraded and Stalled",
        lambda: (m := api.md(ns, "iris")) and phase(m) == "Degraded" and m,
        show=lambda: api.md(ns, "iris"),
    )
    stalled, ready = condition(md, "Stalled"), condition(md, "Ready")
    assert stalled is not None and (stalled["status"], stalled["reason"]) == (
        "True",
        "InsufficientTraffic",
    )
    assert ready is not None and ready["reason"] == "CanaryRolledBack"
    assert md["status"]["lastFailure"]["reason"] == "CanaryRolledBack"
    reasons = [e["reason"] for e in events_for(api, ns, "iris")]
    assert reasons.count("CanaryStarted") == 1 and reasons.count("CanaryRolledBack") == 1, reasons
    table = kubectl("get", "md", "iris", "-n", ns)
    header = table.splitlines()[0]
    assert "ROLLOUT" in header and "CANARY" in header and "RolledBack" in table, table

    # The rejected model is not retried on its own (reconciles keep coming: the canary's pods
    # going away, the stable Deployment's status) ...
    time.sleep(4)
    assert rollout(api.md(ns, "iris"))["phase"] == "RolledBack"
    assert api.get("apps/v1", "Deployment", ns, "iris-canary") is None
    # ... until the spec approves it: a new canary.
    api.patch(
        GROUP_VERSION,
        "ModelDeployment",
        ns,
        "iris",
        {"spec": {"rollout": {"approve": V2[1]}}},
    )
    wait_for(
        "the approved model's canary",
        lambda: (
            rollout(api.md(ns, "iris")).get("phase") == "Progressing"
            and api.get("apps/v1", "Deployment", ns, "iris-canary") is not None
        ),
        show=lambda: rollout(api.md(ns, "iris")),
    )

    # The spec going back to the stable model ends the canary.
    api.patch(GROUP_VERSION, "ModelDeployment", ns, "iris", {"spec": {"model": model(V1)}})
    md = wait_for(
        "back to v1, Ready, canary removed",
        lambda: (
            (m := api.md(ns, "iris"))
            and rollout(m).get("reason") == "Superseded"
            and condition_is(m, "Ready")
            and api.get("apps/v1", "Deployment", ns, "iris-canary") is None
            and m
        ),
        show=lambda: api.md(ns, "iris"),
    )
    assert rollout(md)["phase"] == "Idle"
    assert condition_is(md, "Stalled", "False")


def test_abort_rolls_a_running_canary_back_and_retry_starts_it_again(
    modelyard: Modelyard, ns: str
) -> None:
    """``kubectl modelyard abort`` / ``retry``: the same spec changes as the Argo CD actions."""
    api, kubectl = modelyard.api, modelyard.kubectl
    holding = {**ROLLOUT, "canary": {**ROLLOUT["canary"], "analysis": {"interval": "1s"}}}
    body = model_deployment("iris", storage_uri=V1[0], rollout=holding)
    body["spec"]["model"]["sha256"] = V1[1]
    kubectl.apply(body, namespace=ns)
    wait_for("iris Ready on v1", lambda: (m := api.md(ns, "iris")) and condition_is(m, "Ready"))
    api.patch(GROUP_VERSION, "ModelDeployment", ns, "iris", {"spec": {"model": model(V2)}})
    wait_for(
        "the canary running",
        lambda: (
            rollout(api.md(ns, "iris")).get("phase") == "Progressing"
            and api.get("apps/v1", "Deployment", ns, "iris-canary") is not None
        ),
        show=lambda: rollout(api.md(ns, "iris")),
    )

    said = plugin(kubectl, "abort", "iris", "-n", ns)
    assert V2[1] in said, said
    md = api.md(ns, "iris")
    assert md is not None and md["spec"]["rollout"]["abort"] == V2[1]
    md = wait_for(
        "RolledBack, Aborted",
        lambda: (m := api.md(ns, "iris")) and rollout(m).get("reason") == "Aborted" and m,
        show=lambda: rollout(api.md(ns, "iris")),
    )
    assert rollout(md)["phase"] == "RolledBack" and rollout(md)["canary"]["sha256"] == V2[1]
    wait_for(
        "the canary Deployment gone",
        lambda: api.get("apps/v1", "Deployment", ns, "iris-canary") is None,
    )
    wait_for(
        "a CanaryAborted Event",
        lambda: any(e["reason"] == "CanaryAborted" for e in events_for(api, ns, "iris")),
    )
    time.sleep(3)  # more reconciles: it stays back while abort names it
    assert rollout(api.md(ns, "iris"))["reason"] == "Aborted"
    assert api.get("apps/v1", "Deployment", ns, "iris-canary") is None

    plugin(kubectl, "retry", "iris", "-n", ns)
    md = api.md(ns, "iris")
    assert md is not None and "abort" not in md["spec"]["rollout"]
    wait_for(
        "the canary running again",
        lambda: (
            rollout(api.md(ns, "iris")).get("phase") == "Progressing"
            and api.get("apps/v1", "Deployment", ns, "iris-canary") is not None
        ),
        show=lambda: rollout(api.md(ns, "iris")),
    )
