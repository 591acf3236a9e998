"""KServe's Python model server with a scikit-learn model, as KServe's sklearnserver serves it:
a ``kserve.Model`` that joblib-loads the pipeline and predicts on the V2 InferRequest through
kserve's own ``get_predict_input`` / ``get_predict_response`` helpers.

Runs inside benchmarks/.venvs/kserve:

    BENCH_MODEL_PATH=... BENCH_MODEL_NAME=... BENCH_PORT=... BENCH_GRPC_PORT=... \
        python benchmarks/servers/kserve_sklearn.py

One worker, gRPC off, per-request latency logging off (``enable_latency_logging``, on by
default), and the two per-request log lines KServe writes regardless (the uvicorn access log
and the ``kserve.trace`` timing middleware) turned down to WARNING, so no server in the
benchmark pays for a log line per request. With the FastAPI that kserve 0.21.0's requirements
resolve to today, every response also printed a FastAPIDeprecationWarning (ORJSONResponse is
deprecated) to stderr; that warning is filtered out here, again in KServe's favour. kserve
parses sys.argv itself, hence the arguments travel as environment.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

import joblib
import kserve
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearnModel(kserve.Model):
    def __init__(self, name: str, model_path: str) -> None:
        super().__init__(name)
        self.model_path = model_path
        self.ready = False

    def load(self) -> bool:
        self._model = joblib.load(self.model_path)
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None):
        instances = get_predict_input(payload)
        result = self._model.predict(instances)
        return get_predict_response(payload, result, self.name)


def main() -> None:
    model_path = os.environ["BENCH_MODEL_PATH"]
    name = os.environ["BENCH_MODEL_NAME"]
    port = int(os.environ["BENCH_PORT"])
    model = SKLearnModel(name, model_path)
    model.load()
    server = kserve.ModelServer(
        http_port=port,
        grpc_port=int(os.environ["BENCH_GRPC_PORT"]),
        workers=1,
        enable_grpc=False,
        enable_latency_logging=False,
    )
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    for noisy in ("uvicorn.access", "kserve.trace"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    server.start([model])


if __name__ == "__main__":
    sys.exit(main())
