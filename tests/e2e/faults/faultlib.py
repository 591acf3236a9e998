"""What the fault tests use to break things and to count what breaking them cost.

- ``StallProxy``: a TCP forwarder in front of the API server whose connections can be made to
  hang (bytes neither read nor forwarded, sockets left open: a half-open peer).
- ``SteadyClient``: a paced V2 inference client of a Service's ClusterIP that records every
  request; ``window()`` counts the failures and the longest outage during one fault.
- etcd compaction through etcd's JSON gateway, a probe for "410 Gone" on a watch, and small
  waits (``holds``: true now and for a while after a reconcile was triggered).
- ``FaultReport``: one row per fault (what happened, time to converge, what was lost), printed
  at the end of the session.

Only the standard library (plus the harness's Api) is used.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.cluster.operator_harness import (
    MODELS_HOST_ROOT,
    Api,
    Kubectl,
    OperatorProcess,
    condition,
    condition_is,
    model_deployment,
    operator_log_section,
    phase,
    training_job,
    wait_for,
)

# The product's labels on its children (operator/modelyard/naming.py).
LABEL_TRAINING_JOB = "modelyard.io/training-job"
LABEL_MODEL_DEPLOYMENT = "modelyard.io/model-deployment"
TOUCH_ANNOTATION = "modelyard.io/fault-touch"

# Longer than any watch-driven wait: what converges faster was not the periodic resync.
RESYNC_SECONDS = float(os.environ.get("MODELYARD_FAULTS_RESYNC_SECONDS", "60"))
# The most a change may take to reach status through a live watch.
WATCH_SECONDS = float(os.environ.get("MODELYARD_FAULTS_WATCH_SECONDS", "20"))
MODELS_ROOT = MODELS_HOST_ROOT  # the harness's hostPath models volumes live here

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
ANSWER = [0, 2, 1]  # setosa, virginica, versicolor
INFER_BODY = json.dumps(
    {
        "inputs": [
            {
                "name": "input-0",
                "shape": [len(ROWS), 4],
                "datatype": "FP64",
                "data": [v for row in ROWS for v in row],
            }
        ]
    }
).encode()


# --- a TCP proxy that can hang -------------------------------------------------------------------


class _Pair:
    """One client connection and its upstream (none when it was accepted while stalled)."""

    def __init__(self, client: socket.socket, upstream: socket.socket | None, frozen: bool):
        self.client = client
        self.upstream = upstream
        self.frozen = frozen

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()


class StallProxy:
    """``127.0.0.1:<port>`` -> ``target``. ``stall()`` freezes every open connection and every
    one accepted while stalled; ``resume()`` lets new connections through again while the
    frozen ones stay frozen until ``close()`` -- as after a NAT or load balancer lost its
    state: the client's sockets look open, nothing ever arrives, and only a client-side timeout
    gets it out."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._pairs: list[_Pair] = []
        self._lock = threading.Lock()
        self._stalled = False
        self._closed = threading.Event()
        self.accepted = 0
        self.frozen_total = 0

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> StallProxy:
        threading.Thread(target=self._accept_loop, name="stall-proxy", daemon=True).start()
        return self

    def stall(self) -> int:
        """Freeze everything; returns how many open connections were frozen."""
        with self._lock:
            self._stalled = True
            live = [p for p in self._pairs if not p.frozen]
            for pair in live:
                pair.frozen = True
            self.frozen_total += len(live)
            return len(live)

    def resume(self) -> None:
        with self._lock:
            self._stalled = False

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            for pair in self._pairs:
                pair.close()
            self._pairs.clear()

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.5)
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                stalled = self._stalled
                if stalled:
                    self.frozen_total += 1
            upstream = None
            if not stalled:
                try:
                    upstream = socket.create_connection(self.target, timeout=5)
                    upstream.settimeout(None)
                except OSError:
                    client.close()  # the API server is down: refuse, as it would
                    continue
            pair = _Pair(client, upstream, frozen=stalled)
            with self._lock:
                self._pairs.append(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: _Pair) -> None:
        try:
            while not self._closed.is_set():
                if pair.frozen or pair.upstream is None:
                    time.sleep(0.2)  # hold the socket open and read nothing
                    continue
                readable, _, _ = select.select([pair.client, pair.upstream], [], [], 0.2)
                for sock in readable:
                    if pair.frozen:
                        break
                    data = sock.recv(65536)
                    if not data:
                        return
                    other = pair.upstream if sock is pair.client else pair.client
                    other.sendall(data)
        except OSError:
            return
        finally:
            if not pair.frozen:
                pair.close()
                with self._lock, contextlib.suppress(ValueError):
                    self._pairs.remove(pair)


# --- the steady client ---------------------------------------------------------------------------


@dataclass
class Outcome:
    at: float
    ok: bool
    detail: str


@dataclass
class WindowStats:
    name: str
    total: int
    failed: int
    longest_outage: float
    errors: dict[str, int]

    def lost(self) -> str:
        if not self.total:
            return "no requests sent"
        text = f"{self.failed}/{self.total} requests failed"
        if self.failed:
            kinds = ", ".join(f"{k} x{n}" for k, n in sorted(self.errors.items()))
            text += f" (longest outage {self.longest_outage:.1f}s: {kinds})"
        return text


class Window:
    def __init__(self, client: SteadyClient, name: str) -> None:
        self.client = client
        self.name = name
        self.start = time.monotonic()
        self.end: float | None = None

    def stats(self) -> WindowStats:
        end = self.end if self.end is not None else time.monotonic()
        seen = [o for o in self.client.outcomes() if self.start <= o.at <= end]
        longest, run_start = 0.0, None
        for outcome in seen:
            if not outcome.ok and run_start is None:
                run_start = outcome.at
            elif outcome.ok and run_start is not None:
                longest = max(longest, outcome.at - run_start)
                run_start = None
        if run_start is not None:
            longest = max(longest, end - run_start)
        errors = Counter(o.detail for o in seen if not o.ok)
        return WindowStats(self.name, len(seen), sum(errors.values()), longest, dict(errors))


class SteadyClient:
    """Sends one inference request every ``interval`` seconds to the URL ``resolve()`` returns
    (re-read twice a second: a recreated Service gets a new ClusterIP), and records each
    outcome: OK only for HTTP 200 with the expected predictions. Bounded in time and count."""

    def __init__(
        self,
        resolve: Callable[[], str | None],
        *,
        interval: float = 0.1,
        timeout: float = 2.0,
        max_seconds: float = 1200.0,
        max_requests: int = 12000,
    ) -> None:
        self._resolve = resolve
        self.interval = interval
        self.timeout = timeout
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self._url: str | None = None
        self._outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> SteadyClient:
        self._refresh()
        for target, name in ((self._resolver, "resolver"), (self._sender, "sender")):
            thread = threading.Thread(target=target, name=f"steady-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    def last_ok(self) -> bool:
        with self._lock:
            return bool(self._outcomes) and self._outcomes[-1].ok

    @contextlib.contextmanager
    def window(self, name: str) -> Iterator[Window]:
        win = Window(self, name)
        try:
            yield win
        finally:
            win.end = time.monotonic()

    def _refresh(self) -> None:
        with contextlib.suppress(Exception):  # an API hiccup keeps the last known URL
            self._url = self._resolve()

    def _resolver(self) -> None:
        while not self._stop.wait(0.5):
            self._refresh()

    def _sender(self) -> None:
        began = time.monotonic()
        sent = 0
        while not self._stop.is_set():
            if sent >= self.max_requests or time.monotonic() - began > self.max_seconds:
                return
            started = time.monotonic()
            ok, detail = self._one()
            with self._lock:
                self._outcomes.append(Outcome(started, ok, detail))
            sent += 1
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _one(self) -> tuple[bool, str]:
        url = self._url
        if url is None:
            return False, "no Service"
        req = urllib.request.Request(
            url, data=INFER_BODY, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return False, f"HTTP {e.code}"
        except TimeoutError:
            return False, "timeout"
        except urllib.error.URLError as e:
            reason = e.reason
            if isinstance(reason, TimeoutError | socket.timeout):
                return False, "timeout"
            if isinstance(reason, ConnectionRefusedError):
                return False, "refused"
            return False, type(reason).__name__
        except (OSError, ValueError) as e:
            return False, type(e).__name__
        if (answer.get("outputs") or [{}])[0].get("data") != ANSWER:
            return False, "wrong answer"
        return True, "ok"


def send(url: str, rows: list[list[float]], *, timeout: float = 10) -> None:
    """Rows to a V2 infer URL in batches of at most 10, as clients do (each request lands on
    one pod); an error answer raises (``HTTPError`` is an ``OSError``)."""
    for start in range(0, len(rows), 10):
        batch = rows[start : start + 10]
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [len(batch), len(batch[0])],
                    "datatype": "FP64",
                    "data": [v for row in batch for v in row],
                }
            ]
        }
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()


def service_url(api: Api, namespace: str, name: str) -> str | None:
    """The Service's V2 infer URL by ClusterIP (the host cannot resolve cluster.local), or None."""
    svc = api.get("v1", "Service", namespace, name)
    if svc is None or svc["metadata"].get("deletionTimestamp"):
        return None
    ip = svc["spec"].get("clusterIP")
    port = svc["spec"]["ports"][0]["port"]
    return f"http://{ip}:{port}/v2/models/{name}/infer" if ip else None


# --- etcd and watches ----------------------------------------------------------------------------


def _etcd(etcd_url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        etcd_url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, Any] = json.loads(resp.read())
        return result


def etcd_compact_all(etcd_url: str) -> int:
    """Write a scratch key twice (outside /registry) and compact etcd to that revision: every
    resourceVersion handed out before is then gone from etcd's history. Returns the revision."""
    key = base64.b64encode(b"/modelyard-faults/bump").decode()
    revision = 0
    for i in range(2):
        value = base64.b64encode(str(i).encode()).decode()
        put = _etcd(etcd_url, "/v3/kv/put", {"key": key, "value": value})
        revision = int(put["header"]["revision"])
    _etcd(etcd_url, "/v3/kv/compaction", {"revision": revision, "physical": True})
    return revision


class AdminHTTP:
    """Raw HTTPS to the API server as the cluster's admin (kubeconfig token and CA): for a
    watch request whose first line is all a test wants to read."""

    def __init__(self, kubeconfig: Path) -> None:
        config = json.loads(kubeconfig.read_text())
        cluster = config["clusters"][0]["cluster"]
        self.server = str(cluster["server"])
        self.token = str(config["users"][0]["user"]["token"])
        self.context = ssl.create_default_context(cafile=cluster["certificate-authority"])

    def open(self, path: str, timeout: float = 10) -> Any:
        """GET ``path``; while the API server says it is still initialising (429, 503 just
        after a restart), retry for up to 30 s."""
        req = urllib.request.Request(
            self.server + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                return urllib.request.urlopen(req, context=self.context, timeout=timeout)
            except urllib.error.HTTPError as e:
                if e.code not in (429, 503) or time.monotonic() > deadline:
                    raise
            time.sleep(0.5)

    def resource_version(self, path: str) -> str:
        """The collection's resourceVersion now (what a client that just listed watches from)."""
        with self.open(path) as resp:
            return str(json.loads(resp.read())["metadata"]["resourceVersion"])

    def first_watch_event(self, path: str, resource_version: str) -> dict[str, Any] | None:
        """The first event of a watch on ``path`` from ``resource_version`` (an ERROR event with
        ``code: 410`` when that version has expired), or None if none comes within 3 s."""
        query = f"?watch=true&resourceVersion={resource_version}&timeoutSeconds=3"
        with self.open(path + query) as resp:
            line = resp.readline()
        return json.loads(line) if line.strip() else None


# --- waiting ------------------------------------------------------------------------------------


def touch(kubectl: Kubectl, kind: str, namespace: str, name: str) -> None:
    """Change an annotation: a watch event that makes the operator reconcile its owner."""
    kubectl(
        "annotate", "--overwrite", "-n", namespace, f"{kind}/{name}",
        f"{TOUCH_ANNOTATION}={time.time():.3f}",
    )  # fmt: skip


def delete_by_hand(kubectl: Kubectl, kind: str, namespace: str, name: str) -> None:
    """``kubectl delete`` as a user types it: children go too (background cascade; the API's
    own default for a batch/v1 Job would orphan its pods)."""
    kubectl("delete", "-n", namespace, f"{kind}/{name}", "--wait=false")


def holds(
    what: str,
    check: Callable[[], Any],
    seconds: float,
    *,
    interval: float = 0.5,
    show: Callable[[], Any] | None = None,
) -> None:
    """``check()`` stays truthy for ``seconds`` (status stays true, not just once)."""
    deadline = time.monotonic() + seconds
    while True:
        if not check():
            shown = f"\n--- now ---\n{json.dumps(show(), indent=1, default=str)}" if show else ""
            pytest.fail(f"no longer true: {what}{shown}{operator_log_section()}", pytrace=False)
        if time.monotonic() > deadline:
            return
        time.sleep(interval)


def waited(
    check: Callable[[], Any], timeout: float, *, interval: float = 0.25
) -> tuple[Any, float]:
    """Poll ``check`` up to ``timeout`` seconds: (its first truthy result or None, seconds
    waited). Unlike ``wait_for`` it does not fail, so a test can report before it asserts."""
    began = time.monotonic()
    while True:
        try:
            result = check()
        except Exception:  # an API call during a fault: not an answer yet
            result = None
        if result:
            return result, time.monotonic() - began
        if time.monotonic() - began > timeout:
            return None, time.monotonic() - began
        time.sleep(interval)


# Which watch delivered an event: kopf logs each handler it ran for a watch event (INFO,
# "Handler '<name>' succeeded."); the periodic resync calls the reconciler directly and logs
# none. So a new line for a child's handler after touching that child proves its watch is live.
def log_lines(operator: OperatorProcess) -> int:
    return len(operator.log_path.read_text(errors="replace").splitlines())


def handled_since(operator: OperatorProcess, mark: int, handler: str) -> bool:
    lines = operator.log_path.read_text(errors="replace").splitlines()[mark:]
    return any(f"Handler '{handler}'" in line for line in lines)


def watch_live(
    operator: OperatorProcess,
    kubectl: Kubectl,
    kind: str,
    namespace: str,
    name: str,
    handler: str,
    timeout: float,
) -> bool:
    """Touch ``kind/name`` and wait for the operator's ``handler`` to run for it."""
    mark = log_lines(operator)
    touch(kubectl, kind, namespace, name)
    found, _ = waited(lambda: handled_since(operator, mark, handler), timeout)
    return bool(found)


def model_versions(models_dir: Path) -> list[str]:
    """Every entry in a TrainingJob's output directory (staging dirs start with '.')."""
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []


# --- the objects under test -----------------------------------------------------------------


@dataclass
class FaultNamespace:
    name: str
    models: Path  # the hostPath behind the models claim


def create_namespace(api: Api, name: str) -> None:
    api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    wait_for(
        f"ServiceAccount default in {name}",
        lambda: api.get("v1", "ServiceAccount", name, "default"),
        timeout=30,
    )


# --- objects and their children ------------------------------------------------------------------


def jobs_of(api: Api, namespace: str, training_job: str) -> list[dict[str, Any]]:
    return api.list("batch/v1", "Job", namespace, f"{LABEL_TRAINING_JOB}={training_job}")


def trainer_pods_of(api: Api, namespace: str, training_job: str) -> list[dict[str, Any]]:
    return api.list(
        "v1",
        "Pod",
        namespace,
        f"{LABEL_TRAINING_JOB}={training_job},modelyard.io/component=trainer",
    )


def server_pods_of(api: Api, namespace: str, md: str) -> list[dict[str, Any]]:
    return api.list("v1", "Pod", namespace, f"{LABEL_MODEL_DEPLOYMENT}={md}")


def status_of(obj: dict[str, Any] | None) -> dict[str, Any]:
    return dict((obj or {}).get("status") or {})


def md_ready(api: Api, namespace: str, name: str, replicas: int) -> dict[str, Any] | None:
    md = api.md(namespace, name)
    if (
        md is not None
        and condition_is(md, "Ready")
        and status_of(md).get("readyReplicas") == (replicas)
    ):
        return md
    return None


def tj_finished(api: Api, namespace: str, name: str) -> dict[str, Any] | None:
    tj = api.tj(namespace, name)
    return tj if phase(tj) in ("Succeeded", "Failed") else None


# Probes: objects whose status the operator writes within one reconcile and without any pod,
# so "the operator sees changes again" costs nothing to check.
MISSING_TJ = "no-such-training-job"


def probe_md(name: str, ref: str = MISSING_TJ) -> dict[str, Any]:
    """A ModelDeployment following a TrainingJob that does not exist."""
    return model_deployment(name, training_job=ref)


def probe_md_answered(api: Api, namespace: str, name: str, ref: str = MISSING_TJ) -> bool:
    md = api.md(namespace, name)
    ready = condition(md, "Ready") or {}
    return (
        md is not None
        and status_of(md).get("observedGeneration") == md["metadata"].get("generation")
        and ready.get("status") == "False"
        and ready.get("reason") == "TrainingJobNotFound"
        and ref in str(ready.get("message"))
    )


def probe_tj(name: str) -> dict[str, Any]:
    """A suspended TrainingJob: its Job is created suspended, so no pod ever runs."""
    return training_job(name, suspend=True)


def probe_tj_answered(api: Api, namespace: str, name: str) -> bool:
    tj = api.tj(namespace, name)
    return (
        tj is not None
        and phase(tj) == "Suspended"
        and status_of(tj).get("observedGeneration") == tj["metadata"].get("generation")
    )


# --- the served model --------------------------------------------------------------------------


SERVED = "iris"
REPLICAS = 2


@dataclass
class Served:
    namespace: str
    name: str  # of the TrainingJob and the ModelDeployment
    model: dict[str, Any]  # the TrainingJob's status.model
    models_dir: Path  # where that TrainingJob writes its versions
    # What the SIGKILL mid-reconcile left, for test_operator_sigkill_mid_reconcile.
    killed_status: dict[str, Any]
    killed_job_uid: str
    kill_to_converged: float


# --- the report ----------------------------------------------------------------------------------


@dataclass
class FaultRow:
    fault: str
    happened: str
    converge: str
    lost: str
    test: str
    passed: bool | None = None


@dataclass
class FaultReport:
    rows: list[FaultRow] = field(default_factory=list)

    def add(
        self, test: str, fault: str, happened: str, converge: float | str | None, lost: str
    ) -> FaultRow:
        took = (
            f"{converge:.1f}s"
            if isinstance(converge, float | int)
            else (converge or "did not converge")
        )
        fault, happened, lost = (s.replace("|", "/") for s in (fault, happened, lost))
        row = FaultRow(fault, happened, took, lost, test)
        self.rows.append(row)
        return row

    def rows_of(self, test: str) -> list[FaultRow]:
        return [r for r in self.rows if r.test == test]

    def markdown(self) -> str:
        lines = [
            "| fault | what happened | time to converge | anything lost | test |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            verdict = {True: "passed", False: "FAILED", None: "?"}[r.passed]
            lines.append(f"| {r.fault} | {r.happened} | {r.converge} | {r.lost} | {verdict} |")
        return "\n".join(lines) + "\n"


REPORT = FaultReport()  # one per session, printed by the conftest's terminal summary


class RowRecorder:
    """A test's handle on ``REPORT``: its rows are marked passed/FAILED with the test."""

    def __init__(self, test: str) -> None:
        self.test = test

    def add(self, fault: str, happened: str, converge: float | str | None, lost: str) -> None:
        REPORT.add(self.test, fault, happened, converge, lost)
