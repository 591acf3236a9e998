"""Serving benchmark: ours against MLServer (default and with adaptive batching), KServe and a
bare-ASGI floor, same models, same load.

Per model (the iris LogisticRegression pipeline and a 50-tree random forest, both from our
trainer): each server runs as one process pinned to core 0 (``taskset``); ``wrk`` (one thread,
8 and 64 connections; ours also 1, with batching on and off) runs pinned to core 1 and POSTs the
same V2 body to it: warm-up, then a measured run, at every batch size. Before any load each
server must answer every payload with a 200 and the predictions the pipeline gives in-process.
The results go to ``benchmarks/results/serving-<date>.json`` and a markdown table to stdout.

Entry: ``python benchmarks/run.py [--quick] [...]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import prep
import venvs
from servers import mlserver_repo

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"
LUA_SCRIPT = HERE / "post.lua"
SERVER_CORE = "0"
LOAD_CORE = "1"
SERVER_KINDS = (
    "modelyard",
    "modelyard-unbatched",
    "modelyard-drift",
    "mlserver",
    "mlserver-batching",
    "kserve",
    "bare-asgi",
)
PEERS = ("mlserver", "kserve")  # in their default configurations
PEER_BATCHING = "mlserver-batching"  # MLServer with its adaptive batching on
FLOOR = "bare-asgi"
OURS = "modelyard"
OURS_UNBATCHED = "modelyard-unbatched"  # ours with spec.server.batching.mode Off
OURS_DRIFT = "modelyard-drift"  # ours with the drift window on (spec.monitoring.drift)
DRIFT_WINDOW = 1000  # the CRD's default window
ESTIMATORS = ("LogisticRegression", "RandomForestClassifier")

# Targets from the issue, checked on ratios measured within one run.
TARGET_PEER_THROUGHPUT = 5.0  # ours >= 5x each default-config peer's req/s
TARGET_BATCHING_PEER_THROUGHPUT = 3.0  # ours >= 3x MLServer with adaptive batching
TARGET_P99 = 0.5  # ours p99 <= 0.5x the best peer's
TARGET_FLOOR_GAP = 1.3  # floor's req/s <= 1.3x ours
TARGET_DRIFT_COST = 0.95  # ours with the drift window on >= 95% of ours with it off
TARGET_BATCHING_P50_COST = 1.05  # at concurrency 1, batching on adds <= 5% p50
BUSY_WARNING_PCT = 20.0  # background busy share of a core above which the report warns
SINGLE_THREADED_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Server:
    kind: str
    label: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str | None] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def infer_url(self) -> str:
        return f"{self.base}/v2/models/{prep.MODEL_NAME}/infer"


class Skip(Exception):
    """This server cannot be measured; the message says exactly why."""


# --- small helpers ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http(url: str, body: bytes | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def cpu_busy(seconds: float) -> dict[str, float]:
    """Busy share (%) of each core over ``seconds``, from /proc/stat: the background load."""

    def sample() -> dict[str, tuple[int, int]]:
        out = {}
        with open("/proc/stat") as stat:
            for line in stat:
                if line.startswith("cpu") and line[3].isdigit():
                    name, *values = line.split()
                    ticks = [int(v) for v in values]
                    idle = ticks[3] + ticks[4]  # idle + iowait
                    out[name] = (sum(ticks), idle)
        return out

    before = sample()
    time.sleep(seconds)
    after = sample()
    busy = {}
    for name, (total, idle) in after.items():
        d_total = total - before[name][0]
        d_idle = idle - before[name][1]
        busy[name] = round(100.0 * (d_total - d_idle) / d_total, 1) if d_total else 0.0
    return busy


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_processes(pgid: int) -> Iterator[tuple[str, list[str]]]:
    """``(pid, stat fields after the command name)`` of each live process in group ``pgid``
    (fields[0] is the state, fields[2] the group, fields[11] and [12] utime and stime)."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            yield entry.name, fields


def group_cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process in process group ``pgid`` (all threads)."""
    ticks = sum(int(f[11]) + int(f[12]) for _, f in group_processes(pgid))
    return ticks / CLOCK_TICKS


def flat(values: object) -> list[object]:
    if isinstance(values, list):
        return [item for value in values for item in flat(value)]
    return [values]


def same_predictions(got: list[object], expected: list[object]) -> bool:
    def norm(value: object) -> object:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return str(value)

    return [norm(v) for v in flat(got)] == [norm(v) for v in flat(expected)]


# --- the processes ----------------------------------------------------------------------------


class Running:
    """A server process in its own session (so its process group is ours alone to stop)."""

    def __init__(self, server: Server, log_path: Path) -> None:
        env = dict(os.environ)
        env.update(SINGLE_THREADED_ENV)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(server.env)
        self.log_path = log_path
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *server.argv],
            env=env,
            cwd=server.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
            except ProcessLookupError:
                pass
        else:  # the leader exited; stop any child it left in its group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()

    def wait_ready(self, server: Server, timeout: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.proc.poll() is not None:
                raise Skip(
                    f"exited with {self.proc.returncode} before it was ready:\n"
                    f"{tail(self.log_path)}"
                )
            try:
                status, _ = http(f"{server.base}/v2/health/ready", timeout=2)
                if status == 200:
                    status, _ = http(f"{server.base}/v2/models/{prep.MODEL_NAME}/ready", timeout=2)
                    if status == 200:
                        return time.monotonic() - start
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise Skip(f"not ready within {timeout:.0f} s:\n{tail(self.log_path)}")


def verify(server: Server, payloads: list[prep.Payload]) -> None:
    """Every payload: a 200 with the in-process predictions, before any load."""
    for payload in payloads:
        status, body = http(server.infer_url, payload.body_path.read_bytes())
        if status != 200:
            raise Skip(f"batch {payload.batch}: HTTP {status}: {body[:500]!r}")
        answer = json.loads(body)
        outputs = answer.get("outputs") or []
        if not outputs:
            raise Skip(f"batch {payload.batch}: no outputs in {body[:300]!r}")
        chosen = next((o for o in outputs if o.get("name") == "predict"), outputs[0])
        if not same_predictions(chosen.get("data"), payload.expected):
            raise Skip(
                f"batch {payload.batch}: predictions differ: got "
                f"{chosen.get('data')!r}, expected {payload.expected!r}"
            )


def wrk(url: str, body_path: Path, connections: int, seconds: float) -> dict[str, object]:
    argv = [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA_SCRIPT),
        url,
        "--",
        str(body_path),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    for line in done.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line[len("WRK_JSON ") :])
    raise Skip(f"wrk gave no summary (exit {done.returncode}): {done.stdout}{done.stderr}")


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    return (done.stdout + done.stderr).strip().splitlines()[0] if done.stdout + done.stderr else ""


def key(batch: int, connections: int) -> str:
    return f"{batch}/c{connections}"


def connections_for(kind: str, args: argparse.Namespace) -> list[int]:
    """wrk connections per kind: ours with and without batching also at 1 (batching's cost)."""
    if kind in (OURS, OURS_UNBATCHED):
        return sorted({1, *args.connections})
    return list(args.connections)


def group_rss_mib(pgid: int) -> float:
    """Resident memory of every live process in process group ``pgid``."""
    total_kib = 0
    for pid, _ in group_processes(pgid):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as status:
            total_kib += next(
                (int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0
            )
    return round(total_kib / 1024, 1)


def measure(
    server: Server,
    payloads: list[prep.Payload],
    args: argparse.Namespace,
    pgid: int,
    connections: list[int],
) -> dict[str, dict[str, object]]:
    """Warm-up, then the measured wrk run, per batch. Besides wall-clock numbers it records the
    server's CPU seconds during the measured run: CPU time per request is what a busy machine
    changes least, so ``rps_per_cpu_s`` (requests per CPU-second of the server's process group)
    compares servers even when the background takes part of core 0."""
    out: dict[str, dict[str, object]] = {}
    for payload, conns in ((p, c) for p in payloads for c in connections):
        wrk(server.infer_url, payload.body_path, conns, args.warmup)
        load_before = os.getloadavg()[0]
        cpu_before = group_cpu_seconds(pgid)
        summary = wrk(server.infer_url, payload.body_path, conns, args.duration)
        cpu = group_cpu_seconds(pgid) - cpu_before
        latency = summary["latency_us"]
        errors = summary["errors"]
        seconds = summary["duration_us"] / 1e6  # type: ignore[operator]
        out[key(payload.batch, conns)] = {
            "batch": payload.batch,
            "connections": conns,
            "rss_mib": group_rss_mib(pgid),
            "requests": summary["requests"],
            "seconds": round(seconds, 3),
            "rps": round(summary["requests"] / seconds, 1),  # type: ignore[operator]
            "p50_ms": round(latency["p50"] / 1000, 3),  # type: ignore[index]
            "p90_ms": round(latency["p90"] / 1000, 3),  # type: ignore[index]
            "p99_ms": round(latency["p99"] / 1000, 3),  # type: ignore[index]
            "max_ms": round(latency["max"] / 1000, 3),  # type: ignore[index]
            "errors": errors,
            "error_count": sum(errors.values()),  # type: ignore[union-attr]
            "loadavg_1m_before": round(load_before, 2),
            "server_cpu_s": round(cpu, 2),
            "server_cpu_share": round(cpu / seconds, 3),  # of one core; 1.0 = had core 0 alone
            "cpu_ms_per_request": round(1000 * cpu / summary["requests"], 4)  # type: ignore[operator]
            if summary["requests"]
            else None,
            "rps_per_cpu_s": round(summary["requests"] / cpu, 1) if cpu > 0 else None,  # type: ignore[operator]
        }
        row = out[key(payload.batch, conns)]
        print(
            f"    batch {payload.batch:>3} c{conns:<3}: {row['rps']:>9.1f} req/s"
            f"  p50 {row['p50_ms']:.2f} ms"
            f"  p99 {row['p99_ms']:.2f} ms  errors {row['error_count']}"
            f"  server CPU {row['server_cpu_share']:.0%} of a core, "
            f"{row['rps_per_cpu_s']} req/CPU-s, RSS {row['rss_mib']} MiB",
            flush=True,
        )
    return out


# --- the four kinds ---------------------------------------------------------------------------


def build(kind: str, model: prep.Model, workdir: Path, logs: Path) -> Server:
    port = free_port()
    if kind in (OURS, OURS_UNBATCHED, OURS_DRIFT):
        if model.ours_dir is None:
            raise Skip("no modelyard artifact: " + model.source)
        if not (prep.RUNTIME_SRC / "modelyard_runtime" / "serve" / "__main__.py").exists():
            raise Skip("serving_image/modelyard_runtime/serve/__main__.py is not in the tree")
        env = prep.runtime_env()
        env.update(
            {
                "MODELYARD_MODEL_DIR": str(model.ours_dir),
                "MODELYARD_MODEL_NAME": prep.MODEL_NAME,
                "MODELYARD_PORT": str(port),
                "MODELYARD_HOST": "127.0.0.1",
            }
        )
        labels = {
            OURS: "modelyard-serve (ours)",
            OURS_UNBATCHED: "modelyard-serve (ours, batching Off)",
            OURS_DRIFT: f"modelyard-serve (ours, drift window {DRIFT_WINDOW})",
        }
        if kind == OURS_DRIFT:
            env["MODELYARD_DRIFT_WINDOW"] = str(DRIFT_WINDOW)
        if kind == OURS_UNBATCHED:
            env["MODELYARD_BATCHING"] = "Off"
        return Server(
            kind,
            labels[kind],
            [sys.executable, "-m", "modelyard_runtime.serve"],
            port,
            env=env,
            notes=[
                "python -m modelyard_runtime.serve with MODELYARD_HOST=127.0.0.1; its defaults "
                "otherwise (runtime Auto, batching Opportunistic, Prometheus metrics on)"
            ],
            versions=venvs.versions(sys.executable, ["uvicorn", "orjson", "numpy", "onnxruntime"]),
        )
    if kind == FLOOR:
        compiled = model.onnx_path  # the same compiled predict ours serves, when there is one
        return Server(
            kind,
            "bare ASGI (floor)",
            [
                sys.executable,
                str(HERE / "servers" / "bare_asgi.py"),
                str(compiled or model.joblib_path),
                prep.MODEL_NAME,
                str(port),
            ],
            port,
            notes=[
                "raw ASGI callable, uvicorn http=httptools, loop auto, no access log; "
                "orjson -> numpy -> "
                + ("ONNX Runtime (model.onnx, 1 thread)" if compiled else "pipeline.predict")
                + " -> orjson"
            ],
            versions=venvs.versions(sys.executable, ["uvicorn", "httptools", "orjson"]),
        )
    venv = "mlserver" if kind.startswith("mlserver") else kind
    python = venvs.ensure(venv, logs / f"{venv}-pip.log")
    if kind.startswith("mlserver"):
        batching = kind == PEER_BATCHING
        root = mlserver_repo.write_repository(
            workdir / kind,
            model.joblib_path,
            prep.MODEL_NAME,
            port,
            free_port(),
            adaptive_batching=batching,
        )
        mlserver_bin = python.parent / "mlserver"
        return Server(
            kind,
            "MLServer 1.7 + mlserver-sklearn" + (", adaptive batching" if batching else ""),
            [str(mlserver_bin), "start", str(root)],
            port,
            cwd=root,
            notes=[
                "parallel_workers 0, metrics_endpoint null, debug false, "
                "gzip off; gRPC cannot be disabled (idle on its own port)"
                + (f"; adaptive batching {mlserver_repo.ADAPTIVE_BATCHING}" if batching else "")
            ],
            versions=venvs.versions(
                python, ["mlserver", "mlserver-sklearn", "scikit-learn", "numpy", "uvicorn"]
            ),
        )
    if kind == "kserve":
        env = {
            "BENCH_MODEL_PATH": str(model.joblib_path),
            "BENCH_MODEL_NAME": prep.MODEL_NAME,
            "BENCH_PORT": str(port),
            "BENCH_GRPC_PORT": str(free_port()),
        }
        return Server(
            kind,
            "KServe ModelServer (sklearn Model)",
            [str(python), str(HERE / "servers" / "kserve_sklearn.py")],
            port,
            env=env,
            notes=[
                "workers 1, enable_grpc False, enable_latency_logging False, access and "
                "kserve.trace logs at WARNING, FastAPI's per-response ORJSONResponse "
                "deprecation warning filtered; "
                "kserve binds 0.0.0.0 (hard-coded), load goes to 127.0.0.1"
            ],
            versions=venvs.versions(
                python, ["kserve", "scikit-learn", "numpy", "uvicorn", "fastapi"]
            ),
        )
    raise ValueError(kind)


# --- report -----------------------------------------------------------------------------------


def ratios(
    servers: dict[str, dict[str, object]], batches: list[int], connections: list[int]
) -> list[dict[str, object]]:
    """One row per target, batch and concurrency; value None when a side is missing. ``met``
    judges the wall-clock ratio (the issue's definition); ``cpu_value`` is the same throughput
    ratio in requests per CPU-second, which a busy machine distorts less."""
    rows: list[dict[str, object]] = []

    def result(kind: str, at: str) -> dict[str, float] | None:
        entry = servers.get(kind, {})
        return entry.get("results", {}).get(at) if entry.get("ok") else None  # type: ignore[union-attr]

    def ratio(top: dict[str, float] | None, bottom: dict[str, float] | None, field: str):
        if top and bottom and top.get(field) and bottom.get(field):
            return top[field] / bottom[field]
        return None

    def row(target: str, at: str, value, cpu_value, goal: str, ok) -> dict[str, object]:
        return {
            "target": target,
            "at": at,
            "value": value,
            "cpu_value": cpu_value,
            "goal": goal,
            "met": None if value is None else ok(value),
            "cpu_met": None if cpu_value is None else ok(cpu_value),
        }

    def throughput(target: str, top: str, bottom: str, at: str, goal: float, at_least: bool):
        a, b = result(top, at), result(bottom, at)
        rows.append(
            row(
                target,
                at,
                ratio(a, b, "rps"),
                ratio(a, b, "rps_per_cpu_s"),
                f"{'>=' if at_least else '<='} {goal}x",
                (lambda v: v >= goal) if at_least else (lambda v: v <= goal),
            )
        )

    for batch in batches:
        for conns in connections:
            at = key(batch, conns)
            for peer in PEERS:
                throughput(f"ours / {peer}", OURS, peer, at, TARGET_PEER_THROUGHPUT, True)
            throughput(
                f"ours / {PEER_BATCHING}",
                OURS,
                PEER_BATCHING,
                at,
                TARGET_BATCHING_PEER_THROUGHPUT,
                True,
            )
            throughput("floor / ours", FLOOR, OURS, at, TARGET_FLOOR_GAP, False)
            throughput("ours drift on / off", OURS_DRIFT, OURS, at, TARGET_DRIFT_COST, True)
            peers = [r for r in (result(p, at) for p in (*PEERS, PEER_BATCHING)) if r]
            best = min(peers, key=lambda r: r["p99_ms"], default=None)
            rows.append(
                row(
                    "p99 ours / best peer",
                    at,
                    ratio(result(OURS, at), best, "p99_ms"),
                    None,
                    f"<= {TARGET_P99}x",
                    lambda v: v <= TARGET_P99,
                )
            )
        at = key(batch, 1)
        rows.append(
            row(
                "p50 ours batching on / off, 1 connection",
                at,
                ratio(result(OURS, at), result(OURS_UNBATCHED, at), "p50_ms"),
                None,
                f"<= {TARGET_BATCHING_P50_COST}x",
                lambda v: v <= TARGET_BATCHING_P50_COST,
            )
        )
    return rows


def busy_warning(servers: dict[str, dict[str, object]]) -> list[str]:
    busiest = max(
        (
            max(r["background_cpu_busy_pct"].values(), default=0.0)
            for entry in servers.values()
            for r in entry["rounds"]  # type: ignore[attr-defined]
        ),
        default=0.0,
    )
    if busiest <= BUSY_WARNING_PCT:
        return []
    return [
        "",
        f"**Warning: the machine was busy (up to {busiest:.0f}% of a core) with other work; "
        "absolute numbers are depressed and noisy, compare ratios within this run only.**",
    ]


def markdown(report: dict[str, object]) -> str:
    config = report["config"]
    lines = [
        f"## Serving benchmark {report['date']}",
        "",
        f"wrk -t1 at {', '.join(str(c) for c in config['connections'])} connections (ours also "
        f"1, batching on and off), {config['duration_s']} s measured after "
        f"{config['warmup_s']} s warm-up; server on core {SERVER_CORE}, wrk on core {LOAD_CORE}"
        + (f"; median of {config['rounds']} interleaved rounds." if config["rounds"] > 1 else "."),
    ]
    for estimator, section in report["models"].items():  # type: ignore[union-attr]
        lines += ["", *model_markdown(estimator, section)]
    return "\n".join(lines)


def model_markdown(estimator: str, section: dict[str, object]) -> list[str]:
    servers = section["servers"]
    predict = section["predict_inprocess_us"]
    lines = [
        f"### {estimator} pipeline on iris ({section['model_source']})",
        "",
        f"Background load: {section['load_note']}",
        *busy_warning(servers),
        "",
        "| server | batch | conns | req/s | p50 ms | p99 ms | errors | server CPU | req/CPU-s "
        "| RSS MiB | ours / this (req/s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ours = servers.get(OURS, {})
    for entry in servers.values():
        if not entry.get("ok"):
            continue
        for at, row in entry["results"].items():
            ours_row = ours.get("results", {}).get(at) if ours.get("ok") else None
            ratio = f"{ours_row['rps'] / row['rps']:.2f}x" if ours_row and row["rps"] else "-"
            lines.append(
                f"| {entry['label']} | {row['batch']} | {row['connections']} | {row['rps']:.0f} | "
                f"{row['p50_ms']:.2f} | {row['p99_ms']:.2f} | {row['error_count']} | "
                f"{row['server_cpu_share']:.0%} | {row['rps_per_cpu_s']:.0f} | "
                f"{row['rss_mib']:.0f} | {ratio} |"
            )
    for batch, timing in predict.items():
        lines.append(
            f"| in-process `pipeline.predict` | {batch} | - | "
            f"{1e6 / timing['median_us']:.0f} (1/t) | {timing['median_us'] / 1000:.3f} "
            f"| - | - | - | {1e6 / timing['cpu_median_us']:.0f} | - | - |"
        )
    skipped = {k: e for k, e in servers.items() if not e.get("ok")}
    if skipped:
        lines += ["", "Not measured:"]
        lines += [
            f"- {e['label']}: {e['error'].splitlines()[0] if e['error'] else ''}"
            for e in skipped.values()
        ]
    lines += [
        "",
        "| target | batch/conns | measured (req/s, p) | met | per CPU-second | met | goal |",
        "|---|---:|---:|---|---:|---|---|",
    ]
    verdict = {None: "n/a", True: "yes", False: "**no**"}
    for row in section["targets"]:
        value = "n/a" if row["value"] is None else f"{row['value']:.2f}x"
        cpu = "-" if row["cpu_value"] is None else f"{row['cpu_value']:.2f}x"
        cpu_met = "-" if row["cpu_value"] is None else verdict[row["cpu_met"]]
        lines.append(
            f"| {row['target']} | {row['at']} | {value} | {verdict[row['met']]} | {cpu} | "
            f"{cpu_met} | {row['goal']} |"
        )
    return lines


# --- main -------------------------------------------------------------------------------------


def preflight() -> None:
    """wrk and taskset, installed from Debian when missing and we are root (as on our machines)."""
    missing = [tool for tool in ("wrk", "taskset") if shutil.which(tool) is None]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print("installing wrk with apt-get ...", flush=True)
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, check=False)
        missing = [tool for tool in missing if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: apt-get install -y wrk util-linux")
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two cores (server on core 0, wrk on core 1)")


def main(args: argparse.Namespace) -> int:
    preflight()
    RESULTS_DIR.mkdir(exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="modelyard-bench-"))
    logs = workdir / "logs"
    logs.mkdir()
    print(f"work dir: {workdir}", flush=True)
    started = dt.datetime.now(dt.UTC)
    try:
        return run(args, workdir, logs, started)
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure_once(
    kind: str,
    entry: dict[str, object],
    model: prep.Model,
    payloads: list[prep.Payload],
    workdir: Path,
    logs: Path,
    args: argparse.Namespace,
) -> None:
    """Start ``kind``, verify it, load it at every batch, stop it; record into ``entry``."""
    running: Running | None = None
    try:
        server = build(kind, model, workdir, logs)
        entry.update(
            label=server.label,
            notes=server.notes,
            versions=server.versions,
            command=" ".join(server.argv),
        )
        running = Running(server, logs / f"{kind}.log")
        startup = round(running.wait_ready(server, args.startup_timeout), 2)
        verify(server, payloads)
        busy = cpu_busy(1.0)  # the server idles: this is everyone else's load
        results = measure(server, payloads, args, running.proc.pid, connections_for(kind, args))
        entry["rounds"].append(  # type: ignore[attr-defined]
            {"startup_s": startup, "background_cpu_busy_pct": busy, "results": results}
        )
    except Skip as error:
        entry["error"] = str(error)
        print(f"  not measured: {error}", flush=True)
    except (RuntimeError, subprocess.SubprocessError, OSError) as error:
        entry["error"] = f"{type(error).__name__}: {error}"
        print(f"  not measured: {entry['error']}", flush=True)
    finally:
        if running is not None:
            running.stop()


def aggregate(rounds: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Per batch, the median over rounds of each number (one round: that round)."""
    out: dict[str, dict[str, object]] = {}
    for batch in rounds[0]["results"]:  # type: ignore[attr-defined]
        rows = [r["results"][batch] for r in rounds]  # type: ignore[index]
        merged: dict[str, object] = {
            "rounds": len(rows),
            "batch": rows[0]["batch"],
            "connections": rows[0]["connections"],
        }
        for key in (
            "rps",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
            "server_cpu_share",
            "rps_per_cpu_s",
            "cpu_ms_per_request",
            "rss_mib",
        ):
            values = [row[key] for row in rows if row.get(key) is not None]
            merged[key] = statistics.median(values) if values else None
        merged["requests"] = sum(row["requests"] for row in rows)
        merged["error_count"] = sum(row["error_count"] for row in rows)
        out[batch] = merged
    return out


def run(args: argparse.Namespace, workdir: Path, logs: Path, started: dt.datetime) -> int:
    models: dict[str, dict[str, object]] = {}
    for estimator in args.estimators:
        print(f"== {estimator}", flush=True)
        model_dir = workdir / estimator
        model_dir.mkdir()
        models[estimator] = run_model(args, estimator, model_dir, logs)
    report: dict[str, object] = {
        "date": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "quick": args.quick,
        "config": {
            "estimators": args.estimators,
            "batches": args.batches,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "wrk_threads": 1,
            "server_core": SERVER_CORE,
            "load_core": LOAD_CORE,
            "server_env": SINGLE_THREADED_ENV,
            "wrk_command": (
                f"taskset -c {LOAD_CORE} wrk -t1 -cN "
                f"-d{max(1, round(args.duration))}s --latency --timeout 10s "
                f"-s benchmarks/post.lua URL -- BODY.json"
            ),
            "wrk_version": wrk_version(),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_end": os.getloadavg(),
        },
        "models": models,
    }
    suffix = "-quick" if args.quick else ""
    out_path = (
        Path(args.output)
        if args.output
        else (RESULTS_DIR / f"serving-{started:%Y-%m-%d}{suffix}.json")
    )
    out_path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    text = markdown(report)
    out_path.with_suffix(".md").write_text(text + "\n")
    print()
    print(text)
    print(f"\nresults: {out_path} and {out_path.with_suffix('.md')}")
    if args.check:
        missed = [
            r
            for section in models.values()
            for r in section["targets"]  # type: ignore[attr-defined]
            if r["met"] is not True
        ]
        return 1 if missed else 0
    return 0


def run_model(
    args: argparse.Namespace, estimator: str, workdir: Path, logs: Path
) -> dict[str, object]:
    """Every server on one model: its section of the report."""
    kinds = [k for k in SERVER_KINDS if k in args.servers]
    model: prep.Model | None = None
    trainer_error = None
    if prep.trainer_available():  # even without ours: the same model in every run
        print("training with the modelyard trainer ...", flush=True)
        try:
            model = prep.train_with_ours(
                sys.executable, workdir, estimator, logs / f"trainer-{estimator}.log"
            )
        except Exception as error:
            trainer_error = f"{type(error).__name__}: {error}"
            print(f"  trainer failed: {trainer_error}", flush=True)
    if model is None:
        model = prep.fit_directly(workdir, estimator)
        if trainer_error:
            model.source = f"fitted by the benchmark (trainer failed: {trainer_error})"
    payloads = prep.make_payloads(model, args.batches, workdir)

    print("in-process predict time ...", flush=True)
    done = subprocess.run(
        [
            "taskset",
            "-c",
            SERVER_CORE,
            sys.executable,
            str(HERE / "predict_time.py"),
            str(model.joblib_path),
            *(str(p.body_path) for p in payloads),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **SINGLE_THREADED_ENV},
        check=True,
    )
    predict = json.loads(done.stdout)
    for batch, timing in predict.items():
        print(f"    batch {batch:>3}: {timing['median_us']:.1f} µs", flush=True)

    servers: dict[str, dict[str, object]] = {
        kind: {"label": kind, "ok": False, "error": None, "rounds": []} for kind in kinds
    }
    for round_no in range(1, args.rounds + 1):
        for kind in kinds:
            entry = servers[kind]
            if entry["error"]:
                continue  # failed in an earlier round: not retried
            print(f"{kind} (round {round_no}/{args.rounds}):", flush=True)
            measure_once(kind, entry, model, payloads, workdir, logs, args)
    for entry in servers.values():
        rounds = entry["rounds"]
        entry["ok"] = not entry["error"] and bool(rounds)
        if entry["ok"]:
            entry["results"] = aggregate(rounds)  # type: ignore[arg-type]

    load_note = f"load average {os.getloadavg()[0]:.2f} (1 min) at the end; " + (
        "busy share of cpu0/cpu1 in the second before each measurement, servers idle: "
        + "; ".join(
            f"{kind} "
            + ", ".join(
                f"{r['background_cpu_busy_pct'].get('cpu0', 0):.0f}/"
                f"{r['background_cpu_busy_pct'].get('cpu1', 0):.0f}%"
                for r in entry["rounds"]  # type: ignore[attr-defined]
            )
            for kind, entry in servers.items()
            if entry["rounds"]
        )
    )
    runtimes = None
    if model.ours_dir is not None:
        runtimes = json.loads((model.ours_dir / "metadata.json").read_text()).get("runtimes")
    return {
        "model_source": model.source,
        "model_notes": model.notes,
        "runtimes_measured_by_the_trainer": runtimes,
        "predict_inprocess_us": predict,
        "load_note": load_note,
        "servers": servers,
        "targets": ratios(servers, args.batches, args.connections),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 1 s warm-up, 2 s measured")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per run")
    p.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[8, 64],
        help="wrk connections (concurrency); ours is also measured at 1",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="start-measure-stop every server this many times, interleaved; report medians",
    )
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    p.add_argument("--servers", nargs="+", choices=SERVER_KINDS, default=list(SERVER_KINDS))
    p.add_argument(
        "--estimators", nargs="+", choices=sorted(prep.HYPERPARAMETERS), default=list(ESTIMATORS)
    )
    p.add_argument("--startup-timeout", type=float, default=120.0)
    p.add_argument("--output", help="results file (default results/serving-<date>.json)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, model)")
    p.add_argument("--check", action="store_true", help="exit 1 unless every target is met")
    return p


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 2.0, 1.0
    return args
