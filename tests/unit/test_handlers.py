"""kopf wiring: only diff-free handlers, so kopf writes nothing onto our objects (no
last-handled-configuration annotation, no progress annotations, no finalizers)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import kopf
import modelyard.handlers
from modelyard.__main__ import main

HANDLERS = Path(modelyard.handlers.__file__).parent
ALLOWED = {"kopf.on.event", "kopf.on.startup", "kopf.on.cleanup"}


def kopf_decorators() -> dict[str, str]:
    """Handler name -> its kopf decorator, read from the handler modules' source (kopf's
    registry is private API)."""
    found = {}
    for module in sorted(HANDLERS.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                name = ast.unparse(call)
                if name.startswith("kopf."):
                    found[node.name] = name
    return found


def test_only_event_watching_handlers_are_registered() -> None:
    # on.create/update/resume/field/delete keep a diff-base and progress in annotations;
    # timers and daemons add a finalizer (the cluster tier's GitOps test checks the objects)
    decorators = kopf_decorators()
    assert set(decorators.values()) <= ALLOWED, decorators
    assert {name for name, d in decorators.items() if d == "kopf.on.event"} == {
        "training_job_changed",
        "trainer_job_changed",
        "trainer_pod_changed",
        "model_deployment_changed",
        "server_deployment_changed",
        "server_service_changed",
        "server_hpa_changed",
        "server_pdb_changed",
        "server_pod_changed",
    }


def test_startup_configures_kopf_quietly() -> None:
    from modelyard.handlers.lifecycle import configure

    settings = kopf.OperatorSettings()
    configure(settings)
    assert settings.posting.enabled is False
    selectors = set(settings.watching.label_selectors.values())
    assert selectors == {"app.kubernetes.io/managed-by=modelyard"}


def test_entrypoint_exists() -> None:
    assert callable(main)


def test_own_status_writes_do_not_trigger_a_model_deployment_reconcile() -> None:
    from modelyard.api import status_caught_up

    assert status_caught_up({"metadata": {"generation": 3}, "status": {"observedGeneration": 3}})
    assert not status_caught_up(
        {"metadata": {"generation": 4}, "status": {"observedGeneration": 3}}
    )
    assert not status_caught_up({"metadata": {"generation": 1}})


def test_a_reconcile_the_cluster_failed_is_retried(monkeypatch: Any) -> None:
    import threading

    from modelyard.handlers import lifecycle
    from modelyard.settings import OperatorSettings

    monkeypatch.setattr(lifecycle, "RETRY_DELAYS", (0.01, 0.01, 0.01))
    calls: list[tuple[str, str]] = []
    done = threading.Event()

    def flaky(namespace: str, name: str) -> None:
        calls.append((namespace, name))
        if len(calls) < 3:
            raise ConnectionResetError("the API server restarted")
        done.set()

    shared = lifecycle.State(OperatorSettings(), None, None, [])  # type: ignore[arg-type]
    shared.run(flaky, "ml", "iris")
    assert done.wait(5)
    assert calls == [("ml", "iris")] * 3


def test_a_standby_does_not_reconcile() -> None:
    from modelyard.handlers import lifecycle
    from modelyard.leader import LeaderElector
    from modelyard.settings import OperatorSettings

    elector = LeaderElector(None, "ns", "lease", "me")  # type: ignore[arg-type]
    shared = lifecycle.State(OperatorSettings(), None, elector, [])  # type: ignore[arg-type]
    calls: list[str] = []
    shared.run(lambda ns, name: calls.append(name), "ml", "iris")
    assert calls == []
    assert lifecycle.state(type("Memo", (), {"modelyard": shared})()) is None
