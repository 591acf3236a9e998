"""In-process predict time: ``model.predict`` on the benchmark's own batches, no server.

    python benchmarks/predict_time.py MODEL.joblib BODY.json [BODY.json ...]

Prints one JSON object: {batch: {"median_us", "min_us", "cpu_median_us", "loops"}} (wall
clock, and CPU time of this process, per call). serving.py runs it pinned to
the servers' core, so it is the part of each request that no server can avoid.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import timeit

import joblib
import numpy as np


def main() -> None:
    model = joblib.load(sys.argv[1])
    out = {}
    for body_path in sys.argv[2:]:
        with open(body_path) as handle:
            tensor = json.load(handle)["inputs"][0]
        features = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
        timer = timeit.Timer(lambda features=features: model.predict(features))
        loops, _ = timer.autorange()  # enough loops for >= 0.2 s
        per_call = [t / loops * 1e6 for t in timer.repeat(repeat=7, number=loops)]
        cpu_timer = timeit.Timer(
            lambda features=features: model.predict(features), timer=time.process_time
        )
        cpu_per_call = [t / loops * 1e6 for t in cpu_timer.repeat(repeat=7, number=loops)]
        out[str(features.shape[0])] = {
            "median_us": round(statistics.median(per_call), 1),
            "min_us": round(min(per_call), 1),
            "cpu_median_us": round(statistics.median(cpu_per_call), 1),
            "loops": loops,
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
