"""MLServer 1.7 with mlserver-sklearn: the model repository and settings it is started with.

``mlserver start DIR`` reads DIR/settings.json and DIR/<model>/model-settings.json. Settings
chosen to make it one lean process, as fair as its configuration allows:
- ``parallel_workers: 0`` -- inference runs in the main process (no worker pool);
- ``metrics_endpoint: null`` -- no Prometheus middleware and no separate metrics server;
- ``debug: false`` -- no uvicorn access log;
- ``gzip_enabled: false`` -- no GZip middleware (wrk asks for no compression anyway);
- gRPC cannot be switched off in 1.7: it listens, idle, on its own free port;
- ``host: 127.0.0.1``;
- with ``adaptive_batching``: MLServer's adaptive batching, ``max_batch_size`` 64 (our default)
  and ``max_batch_time`` 1 ms (it waits up to that long to fill a batch).

Runs with any Python (stdlib only); serving.py calls ``write_repository``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

ADAPTIVE_BATCHING = {"max_batch_size": 64, "max_batch_time": 0.001}


def write_repository(
    root: Path,
    model_path: Path,
    name: str,
    http_port: int,
    grpc_port: int,
    adaptive_batching: bool = False,
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "parallel_workers": 0,
        "metrics_endpoint": None,
        "gzip_enabled": False,
        "load_models_at_startup": True,
    }
    (root / "settings.json").write_text(json.dumps(settings, indent=2))
    model_dir = root / name
    model_dir.mkdir(exist_ok=True)
    shutil.copyfile(model_path, model_dir / "model.joblib")
    model_settings = {
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
        **(ADAPTIVE_BATCHING if adaptive_batching else {}),
    }
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return root
