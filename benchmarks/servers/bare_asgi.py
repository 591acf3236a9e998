"""The practical floor: a raw ASGI callable under uvicorn (httptools), no framework.

orjson parses the V2 body, numpy shapes the one input tensor, the model predicts, orjson
writes the V2 answer. It validates nothing beyond what it needs, so no real server should beat
it by much; it only answers what the benchmark sends (plus the health and model-ready probes).
Given a ``.onnx`` file it predicts with ONNX Runtime (one thread), as ours does with the same
compiled copy; given a ``.joblib`` file, with the scikit-learn pipeline.

    python benchmarks/servers/bare_asgi.py MODEL.joblib|MODEL.onnx NAME PORT
"""

from __future__ import annotations

import sys

import joblib
import numpy as np
import orjson
import uvicorn

DATATYPES = {"i": "INT64", "u": "UINT64", "f": "FP64", "b": "BOOL"}


def make_app(model: object, name: str):
    infer_path = f"/v2/models/{name}/infer"
    ready_paths = {"/v2/health/ready", "/v2/health/live", f"/v2/models/{name}/ready"}
    json_headers = [(b"content-type", b"application/json")]

    async def respond(send, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": json_headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send) -> None:
        if scope["type"] != "http":  # lifespan: nothing to set up
            if scope["type"] == "lifespan":
                while True:
                    message = await receive()
                    if message["type"] == "lifespan.startup":
                        await send({"type": "lifespan.startup.complete"})
                    elif message["type"] == "lifespan.shutdown":
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            return
        path = scope["path"]
        if scope["method"] == "POST" and path == infer_path:
            chunks = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            try:
                request = orjson.loads(b"".join(chunks))
                tensor = request["inputs"][0]
                features = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
                predictions = np.asarray(model.predict(features))
            except Exception as error:  # the floor still answers as V2 does
                await respond(send, 400, orjson.dumps({"error": str(error)}))
                return
            output = {
                "name": "predict",
                "shape": list(predictions.shape),
                "datatype": DATATYPES.get(predictions.dtype.kind, "BYTES"),
                "data": predictions.tolist(),
            }
            await respond(send, 200, orjson.dumps({"model_name": name, "outputs": [output]}))
        elif scope["method"] == "GET" and path in ready_paths:
            await respond(send, 200, b'{"ready":true}')
        else:
            await respond(send, 404, b'{"error":"not found"}')

    return app


class Compiled:
    """An ONNX Runtime session with a scikit-learn-like ``predict`` (the graph's labels)."""

    def __init__(self, path: str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.label = self.session.get_outputs()[0].name

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.label], {self.input: x})[0].ravel()


def main() -> None:
    model_path, name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = Compiled(model_path) if model_path.endswith(".onnx") else joblib.load(model_path)
    app = make_app(model, name)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
