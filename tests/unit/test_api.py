"""Whole objects parsed once at the edge: what parses, what is refused and how it is named."""

from __future__ import annotations

import pytest
from factories import IRIS_SPEC, model_deployment, training_job
from modelyard.api import InvalidSpec, ModelDeployment, TrainingJob, raw_spec_hash


def test_a_training_job_parses_with_its_metadata_and_last_status() -> None:
    tj = TrainingJob.parse(training_job(generation=3, status={"phase": "Running"}))
    assert (tj.metadata.name, tj.metadata.namespace, tj.metadata.generation) == ("iris", "ml", 3)
    assert tj.spec.model.estimator == "LogisticRegression"
    assert tj.status.phase == "Running"


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({**IRIS_SPEC, "model": {"estimator": "Nope"}}, "spec.model.estimator"),
        ({**IRIS_SPEC, "dataset": {}}, "spec.dataset"),
        ({**IRIS_SPEC, "validation": {"cvFolds": 1}}, "cvFolds"),
    ],
)
def test_a_bad_training_job_spec_is_invalid_with_the_field_named(
    spec: dict[str, object], named: str
) -> None:
    with pytest.raises(InvalidSpec) as raised:
        TrainingJob.parse(training_job(spec))
    assert named in raised.value.message


def test_a_bad_model_deployment_spec_is_invalid_with_the_field_named() -> None:
    with pytest.raises(InvalidSpec) as raised:
        ModelDeployment.parse(model_deployment({"model": {}, "replicas": -1}))
    assert "spec.model" in raised.value.message and "spec.replicas" in raised.value.message


def test_a_model_deployment_name_that_cannot_name_a_service_is_invalid() -> None:
    with pytest.raises(InvalidSpec, match="names its Service"):
        ModelDeployment.parse(model_deployment(name="1-starts-with-a-digit"))


def test_an_unreadable_status_reads_as_empty_rather_than_failing_the_reconcile() -> None:
    md = ModelDeployment.parse(model_deployment(status={"phase": "NotAPhase"}))
    assert md.status.phase is None


def test_the_spec_hash_ignores_suspend_only() -> None:
    base = training_job()
    suspended = training_job({**IRIS_SPEC, "suspend": True})
    reseeded = training_job({**IRIS_SPEC, "seed": 7})
    assert raw_spec_hash(base) == raw_spec_hash(suspended) != raw_spec_hash(reseeded)


def test_invalid_spec_messages_are_bounded() -> None:
    assert len(InvalidSpec("x" * 2000).message) == 512
