"""``kubectl modelyard``: the kubectl plugin (krew-style name ``kubectl-modelyard``).

- ``status tj|md NAME``: one readable page: phase, model version and sha256, metrics, the gate's
  verdict, drift, rollout, retraining, the last failure;
- ``history NAME``: a ModelDeployment's model lineage (``status.modelHistory``) with each
  model's metrics and data digest where its TrainingJob still says them;
- ``predict NAME [FILE]``: rows from a CSV (a header row) or JSON (a list of rows) to the V2
  endpoint, through the API server's service proxy (no port-forward, no cluster DNS);
- ``retrain NAME``, ``promote NAME``, ``abort NAME``, ``retry NAME``: the declarative changes a
  GitOps user could commit instead (``spec.retraining.run``; ``spec.rollout.approve`` or
  ``spec.retraining.promotion.approve`` set to the waiting model's sha256;
  ``spec.rollout.abort`` set to the running canary's sha256, and taken out again).

The pages are built by pure functions over the objects (``status_page``, ``history_rows``,
``promotion_patch``, ``abort_patch``, ``retry_patch``), tested without a cluster; ``main``
only reads, patches and prints.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelyard.api import (
    API_GROUP_VERSION,
    MODEL_DEPLOYMENT_KIND,
    TRAINING_JOB_KIND,
    ModelDeploymentStatus,
    TrainingJobStatus,
)
from modelyard.kube import Kube, load_client

KINDS = {
    "tj": TRAINING_JOB_KIND,
    "trainingjob": TRAINING_JOB_KIND,
    "md": MODEL_DEPLOYMENT_KIND,
    "modeldeployment": MODEL_DEPLOYMENT_KIND,
}


class CliError(Exception):
    """What the user did wrong or asked for that cannot be done: printed, exit 1."""


# --- pages (pure) ------------------------------------------------------------------------------


def _table(rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _short(sha: str | None) -> str | None:
    return sha[:12] if sha else None


def _metrics(metrics: dict[str, float] | None) -> str | None:
    if not metrics:
        return None
    return ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items()))


def _conditions(conditions: Sequence[Any]) -> list[tuple[str, str | None]]:
    return [
        (f"condition {c.type}", f"{c.status} {c.reason}" + (f": {c.message}" if c.message else ""))
        for c in conditions
    ]


def status_page(kind: str, body: dict[str, Any]) -> str:
    """A TrainingJob or ModelDeployment's status as ``field  value`` lines."""
    meta = body.get("metadata") or {}
    raw = body.get("status") or {}
    lines: list[tuple[str, str | None]] = [("name", f"{meta.get('namespace')}/{meta.get('name')}")]
    if kind == TRAINING_JOB_KIND:
        tj = TrainingJobStatus.model_validate(raw)
        lines += [
            ("phase", tj.phase),
            ("model", tj.model.version if tj.model else None),
            ("sha256", tj.model.sha256 if tj.model else None),
            ("metrics", _metrics(tj.metrics)),
            (
                "gate",
                None if tj.validation is None else "passed" if tj.validation.passed else "NOT MET",
            ),
            ("dataset", tj.dataset.digest if tj.dataset else None),
        ]
        if tj.comparison is not None:
            versus = tj.comparison.champion
            lines.append(
                (
                    "vs champion",
                    f"{versus.version}: {tj.comparison.metric} {tj.comparison.challenger:.4g} vs "
                    f"{versus.metrics.get(tj.comparison.metric, float('nan')):.4g}"
                    if versus
                    else tj.comparison.reason,
                )
            )
        failure, conditions = tj.last_failure, tj.conditions
    else:
        md = ModelDeploymentStatus.model_validate(raw)
        lines += [
            ("phase", md.phase),
            ("model", md.model.version if md.model else None),
            ("sha256", md.model.sha256 if md.model else None),
            ("replicas", f"{md.ready_replicas or 0}/{md.replicas or 0} ready"),
            ("url", md.url),
        ]
        if md.drift is not None:
            drifted = [f.name for f in md.drift.features if f.drifted]
            lines.append(
                (
                    "drift",
                    f"{md.drift.state} since {md.drift.since}"
                    + (f" ({', '.join(drifted)})" if drifted else ""),
                )
            )
        if md.rollout is not None:
            rollout = md.rollout
            weight = f" at {rollout.actual_weight}%" if rollout.actual_weight is not None else ""
            lines.append(("rollout", f"{rollout.phase} {rollout.reason or ''}{weight}".strip()))
        if md.retraining is not None:
            decision = md.retraining.last_decision
            lines.append(
                (
                    "retraining",
                    f"active {md.retraining.active_job}" if md.retraining.active_job else "idle",
                )
            )
            if decision is not None:
                lines.append(
                    (
                        "last decision",
                        f"{decision.result} {decision.reason} ({decision.job}): {decision.message}",
                    )
                )
        failure, conditions = md.last_failure, md.conditions
    if failure is not None:
        lines.append(("last failure", f"{failure.reason}: {failure.message}"))
    lines += _conditions(conditions)
    return _table(lines)


def history_rows(md: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> str:
    """The lineage, newest first; ``jobs`` are the TrainingJobs by name (for metrics)."""
    status = ModelDeploymentStatus.model_validate(md.get("status") or {})
    if not status.model_history:
        raise CliError("no model history: spec.retraining is off or has not run")
    rows: list[list[Any]] = [
        ["VERSION", "SHA256", "WHY", "PROMOTED", "TRAINING JOB", "DATA", "METRICS"]
    ]
    for entry in status.model_history:
        job = TrainingJobStatus.model_validate(
            (jobs.get(entry.training_job or "") or {}).get("status") or {}
        )
        rows.append(
            [
                entry.version,
                _short(entry.sha256),
                entry.why,
                entry.promoted_at,
                entry.training_job,
                _short(job.dataset.digest.removeprefix("sha256:")) if job.dataset else None,
                _metrics(job.metrics),
            ]
        )
    return _table(rows)


def promotion_patch(md: dict[str, Any]) -> dict[str, Any]:
    """The spec change that promotes what waits: a canary awaiting approval (or paused after
    failed checks) via ``spec.rollout.approve``, else a challenger awaiting approval via
    ``spec.retraining.promotion.approve``."""
    status = ModelDeploymentStatus.model_validate(md.get("status") or {})
    rollout, retraining = status.rollout, status.retraining
    if (
        rollout is not None
        and rollout.phase == "Paused"
        and rollout.canary
        and rollout.canary.sha256
    ):
        return {"spec": {"rollout": {"approve": rollout.canary.sha256}}}
    decision = retraining.last_decision if retraining else None
    if (
        decision is not None
        and decision.result == "AwaitingApproval"
        and decision.challenger
        and decision.challenger.sha256
    ):
        return {"spec": {"retraining": {"promotion": {"approve": decision.challenger.sha256}}}}
    raise CliError("nothing awaits approval: no paused canary, no challenger awaiting approval")


def abort_patch(md: dict[str, Any]) -> dict[str, Any]:
    """The spec change that stops a running canary: ``spec.rollout.abort`` set to its sha256
    (the operator rolls it back and keeps it back while that holds)."""
    rollout = ModelDeploymentStatus.model_validate(md.get("status") or {}).rollout
    if (
        rollout is None
        or rollout.phase not in ("Progressing", "Paused")
        or not (rollout.canary and rollout.canary.sha256)
    ):
        phase = rollout.phase if rollout else "none"
        raise CliError(f"no canary to abort (rollout phase: {phase})")
    return {"spec": {"rollout": {"abort": rollout.canary.sha256}}}


def retry_patch(md: dict[str, Any]) -> dict[str, Any]:
    """The spec change that tries an aborted canary again: ``spec.rollout.abort`` removed."""
    if not ((md.get("spec") or {}).get("rollout") or {}).get("abort"):
        raise CliError("nothing to retry: spec.rollout.abort is not set")
    return {"spec": {"rollout": {"abort": None}}}


def parse_rows(text: str) -> list[list[Any]]:
    """JSON (a list of rows, or one row) or CSV with a header row."""
    stripped = text.strip()
    if stripped.startswith("["):
        rows = json.loads(stripped)
        return rows if rows and isinstance(rows[0], list) else [rows]
    reader = csv.reader(io.StringIO(stripped))
    next(reader, None)  # the header
    return [[_number(v) for v in row] for row in reader if row]


def _number(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def infer_body(rows: list[list[Any]]) -> dict[str, Any]:
    numeric = all(isinstance(v, int | float) for row in rows for v in row)
    return {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(rows), len(rows[0]) if rows else 0],
                "datatype": "FP64" if numeric else "BYTES",
                "data": [v for row in rows for v in row],
            }
        ]
    }


# --- the shell ---------------------------------------------------------------------------------


class Cluster:
    """Reads and patches through the operator's own client wrapper, as the user the
    kubeconfig names (the plugin has no rights of its own)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.kube = Kube(api)

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        found = self.kube.get(API_GROUP_VERSION, kind, namespace, name)
        if found is None:
            raise CliError(f"{kind} {namespace}/{name} not found")
        return found

    def list(self, kind: str, namespace: str) -> list[dict[str, Any]]:
        return self.kube.list(API_GROUP_VERSION, kind, namespace)

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.kube.dynamic.resources.get(api_version=API_GROUP_VERSION, kind=kind).patch(
            body=patch,
            name=name,
            namespace=namespace,
            content_type="application/merge-patch+json",
        )

    def infer(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the V2 endpoint through the API server's service proxy."""
        path = f"/api/v1/namespaces/{namespace}/services/{name}:http/proxy/v2/models/{name}/infer"
        request = self.api.param_serialize(
            method="POST",
            resource_path=path,
            header_params={"Content-Type": "application/json", "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=30)
        response.read()  # type: ignore[no-untyped-call]
        if response.status >= 400:
            raise ApiException(status=response.status, reason=response.reason, http_resp=response)
        return dict(json.loads(bytes(response.data or b"{}")))


def _status(cluster: Cluster, args: argparse.Namespace) -> str:
    kind = KINDS[args.kind]
    return status_page(kind, cluster.get(kind, args.namespace, args.name))


def _history(cluster: Cluster, args: argparse.Namespace) -> str:
    md = cluster.get(MODEL_DEPLOYMENT_KIND, args.namespace, args.name)
    jobs = {j["metadata"]["name"]: j for j in cluster.list(TRAINING_JOB_KIND, args.namespace)}
    return history_rows(md, jobs)


def _predict(cluster: Cluster, args: argparse.Namespace) -> str:
    if args.file == "-":
        text = sys.stdin.read()
    else:
        with open(args.file, encoding="utf-8") as stream:
            text = stream.read()
    rows = parse_rows(text)
    if not rows:
        raise CliError("no rows to predict")
    try:
        answer = cluster.infer(args.namespace, args.name, infer_body(rows))
    except ApiException as error:
        raise CliError(
            f"the server answered {error.status}: {error.body or error.reason}"
        ) from error
    return json.dumps(answer.get("outputs", answer))


def _retrain(cluster: Cluster, args: argparse.Namespace) -> str:
    md = cluster.get(MODEL_DEPLOYMENT_KIND, args.namespace, args.name)
    if not (md.get("spec") or {}).get("retraining"):
        raise CliError(f"{args.name} has no spec.retraining: add one (docs/retraining.md) first")
    token = args.run or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    cluster.patch(
        MODEL_DEPLOYMENT_KIND, args.namespace, args.name, {"spec": {"retraining": {"run": token}}}
    )
    return f"spec.retraining.run set to {token}: one retraining starts"


def _patcher(
    make: Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[Cluster, argparse.Namespace], str]:
    def apply(cluster: Cluster, args: argparse.Namespace) -> str:
        md = cluster.get(MODEL_DEPLOYMENT_KIND, args.namespace, args.name)
        patch = make(md)
        cluster.patch(MODEL_DEPLOYMENT_KIND, args.namespace, args.name, patch)
        return f"patched {json.dumps(patch)}"

    return apply


COMMANDS: dict[str, Callable[[Cluster, argparse.Namespace], str]] = {
    "status": _status,
    "history": _history,
    "predict": _predict,
    "retrain": _retrain,
    "promote": _patcher(promotion_patch),
    "abort": _patcher(abort_patch),
    "retry": _patcher(retry_patch),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="kubectl modelyard", description=__doc__.splitlines()[0])
    common = argparse.ArgumentParser(add_help=False)  # kubectl passes -n after the command
    common.add_argument("-n", "--namespace", default=None, help="default: the context's")
    sub = top.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, parents=[common])

    status = command("status", "a TrainingJob's or ModelDeployment's status")
    status.add_argument("kind", choices=sorted(KINDS))
    status.add_argument("name")
    command("history", "a ModelDeployment's model lineage").add_argument("name")
    predict = command("predict", "send rows (CSV with a header, or JSON) to a ModelDeployment")
    predict.add_argument("name")
    predict.add_argument("file", nargs="?", default="-", help="default: standard input")
    retrain = command("retrain", "start one retraining (spec.retraining.run)")
    retrain.add_argument("name")
    retrain.add_argument("--run", help="the token to set (default: the time)")
    command("promote", "approve what waits (a canary or a challenger)").add_argument("name")
    command("abort", "roll the running canary back (spec.rollout.abort)").add_argument("name")
    command("retry", "try an aborted canary again").add_argument("name")
    return top


def _context_namespace() -> str:
    from kubernetes import config

    try:
        _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        return "default"
    return str((active or {}).get("context", {}).get("namespace") or "default")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.namespace = args.namespace or _context_namespace()
    try:
        print(COMMANDS[args.command](Cluster(load_client()), args))
    except CliError as error:
        print(f"kubectl modelyard {args.command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
