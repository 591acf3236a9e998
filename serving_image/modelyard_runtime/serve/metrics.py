"""Prometheus metrics: requests by model, version and outcome; latency; predictions by class;
the drift window's size and its last check per feature (``feature="prediction"``: the outputs).

Label children are bound once per model so the hot path only increments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest as _generate_latest

OUTCOMES = ("ok", "bad_request", "not_found", "too_large", "not_ready", "overloaded", "error")
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "modelyard_inference_requests",
            "V2 inference requests by outcome",
            ["model", "version", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelyard_inference_latency_seconds",
            "V2 inference latency, body read to answer",
            ["model", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "modelyard_inference_batch_requests",
            "Inference requests merged into one predict call (opportunistic batching)",
            ["model", "version"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "modelyard_predictions",
            "Predicted rows by predicted class (classifiers)",
            ["model", "version", "class"],
            registry=self.registry,
        )
        self.window_samples = Gauge(
            "modelyard_drift_window_samples",
            "Rows in this server's drift window",
            ["model", "version"],
            registry=self.registry,
        )
        drift = ["model", "version", "feature"]
        self.drift_p_value = Gauge(
            "modelyard_drift_p_value",
            "Corrected p-value of the last drift check of this server's window",
            drift,
            registry=self.registry,
        )
        self.drift_effect = Gauge(
            "modelyard_drift_effect",
            "Effect size of the last drift check (normed Wasserstein or Jensen-Shannon)",
            drift,
            registry=self.registry,
        )
        self.drift_drifted = Gauge(
            "modelyard_drift_drifted",
            "1 if the last drift check found this feature drifted",
            drift,
            registry=self.registry,
        )
        self._bound: dict[tuple[str, str], _BoundMetrics] = {}

    def bind(self, model: str, version: str, classes: Sequence[object] | None) -> _BoundMetrics:
        bound = _BoundMetrics(self, model, version, classes)
        self._bound[(model, version)] = bound
        return bound

    def generate(self) -> bytes:
        return _generate_latest(self.registry)


class _BoundMetrics:
    def __init__(
        self, metrics: ServerMetrics, model: str, version: str, classes: Sequence[object] | None
    ) -> None:
        self.outcome = {o: metrics.requests.labels(model, version, o) for o in OUTCOMES}
        self.latency = metrics.latency.labels(model, version)
        self.batch = metrics.batch_requests.labels(model, version)
        self._metrics, self._model, self._version = metrics, model, version
        self._by_class = {
            str(c): metrics.predictions.labels(model, version, str(c))
            for c in (classes if classes is not None else [])
        }
        # Keyed by the predicted value itself, so the hot path skips str().
        self._by_value: dict[object, Counter] = {
            c: self._by_class[str(c)] for c in (classes if classes is not None else [])
        }

    def watch_window(self, samples: Callable[[], float]) -> None:
        self._metrics.window_samples.labels(self._model, self._version).set_function(samples)

    def drift_checked(self, tests: Sequence[tuple[str, float | None, float | None, bool]]) -> None:
        """One drift check's ``(feature, p-value, effect, drifted)`` per test (NaN: none)."""
        metrics, labels = self._metrics, (self._model, self._version)
        for feature, p_value, effect, drifted in tests:
            nan = float("nan")
            metrics.drift_p_value.labels(*labels, feature).set(nan if p_value is None else p_value)
            metrics.drift_effect.labels(*labels, feature).set(nan if effect is None else effect)
            metrics.drift_drifted.labels(*labels, feature).set(1.0 if drifted else 0.0)

    def count_predictions(self, predicted: np.ndarray) -> None:
        if not self._by_class:
            return
        if predicted.shape[0] == 1:  # the common case: no np.unique
            self._class(predicted.item()).inc()
            return
        labels, counts = np.unique(predicted, return_counts=True)
        for label, count in zip(labels.tolist(), counts.tolist(), strict=True):
            self._class(label).inc(count)

    def _class(self, label: object) -> Counter:
        child = self._by_value.get(label)
        if child is not None:
            return child
        key = str(label.item() if isinstance(label, np.generic) else label)
        child = self._by_class.get(key)
        if child is None:  # a label outside metadata's classes: still counted
            child = self._metrics.predictions.labels(self._model, self._version, key)
            self._by_class[key] = child
        return child
