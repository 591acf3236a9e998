"""The CRD schemas (crds/), the pydantic models (modelyard.api, modelyard_runtime.spec) and the
samples (manifests/samples/) agree.

- every property in a CRD schema exists in the model, and vice versa (spec and status);
- required fields and enums agree, and enums equal the contract's allow-lists;
- every sample validates against both the CRD schema (jsonschema, draft 4 like Kubernetes'
  OpenAPI v3 subset) and the model;
- CEL cannot run here, so each CEL rule has cases that the plain schema accepts and the model's
  equivalent validator rejects (and a valid neighbour both accept).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from modelyard.api import (
    MODEL_DEPLOYMENT_NAME_MESSAGE,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    TrainingJobSpec,
    TrainingJobStatus,
    model_deployment_name_error,
)
from modelyard_runtime import contract
from pydantic import BaseModel, ValidationError

ROOT = Path(__file__).resolve().parents[2]
CRDS = {
    "TrainingJob": (ROOT / "crds" / "trainingjobs.yaml", TrainingJobSpec, TrainingJobStatus),
    "ModelDeployment": (
        ROOT / "crds" / "modeldeployments.yaml",
        ModelDeploymentSpec,
        ModelDeploymentStatus,
    ),
}


def crd(kind: str) -> dict[str, Any]:
    return dict(yaml.safe_load(CRDS[kind][0].read_text()))


def root_schema(kind: str) -> dict[str, Any]:
    version = crd(kind)["spec"]["versions"][0]
    return dict(version["schema"]["openAPIV3Schema"])


# --- a small structural-schema walker ------------------------------------------------------------


def resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and drop the ``null`` branch pydantic emits for optional fields."""
    while True:
        if "$ref" in schema:
            schema = defs[schema["$ref"].split("/")[-1]]
            continue
        options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
        if "anyOf" in schema and len(options) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
            continue
        return schema


def opaque(schema: dict[str, Any]) -> bool:
    return bool(
        schema.get("x-kubernetes-preserve-unknown-fields")
        or schema.get("x-kubernetes-int-or-string")
    )


def compare(
    crd_node: dict[str, Any],
    model_node: dict[str, Any],
    defs: dict[str, Any],
    path: str,
    problems: list[str],
    *,
    check_required: bool,
) -> None:
    model_node = resolve(model_node, defs)
    if opaque(crd_node):
        return
    if "enum" in crd_node:
        model_enum = model_node.get("enum") or (
            [model_node["const"]] if "const" in model_node else None
        )
        if model_enum is None or set(model_enum) != set(crd_node["enum"]):
            problems.append(f"{path}: enum {crd_node['enum']} != model {model_enum}")
    if "properties" in crd_node:
        crd_props = set(crd_node["properties"])
        model_props = set(model_node.get("properties", {}))
        if crd_props != model_props:
            problems.append(
                f"{path}: only in CRD {sorted(crd_props - model_props)}, "
                f"only in model {sorted(model_props - crd_props)}"
            )
        if check_required and set(crd_node.get("required", [])) != set(
            model_node.get("required", [])
        ):
            problems.append(
                f"{path}: required {crd_node.get('required', [])} != "
                f"model {model_node.get('required', [])}"
            )
        for name in crd_props & model_props:
            compare(
                crd_node["properties"][name],
                model_node["properties"][name],
                defs,
                f"{path}.{name}",
                problems,
                check_required=check_required,
            )
    if isinstance(crd_node.get("additionalProperties"), dict):
        inner = model_node.get("additionalProperties")
        if not isinstance(inner, dict):
            problems.append(f"{path}: CRD has a map, the model does not")
        else:
            compare(
                crd_node["additionalProperties"],
                inner,
                defs,
                f"{path}.*",
                problems,
                check_required=check_required,
            )
    if "items" in crd_node:
        inner = model_node.get("items")
        if not isinstance(inner, dict):
            problems.append(f"{path}: CRD has a list, the model does not")
        else:
            compare(
                crd_node["items"], inner, defs, f"{path}[]", problems, check_required=check_required
            )


@pytest.mark.parametrize("kind", sorted(CRDS))
@pytest.mark.parametrize("part", ["spec", "status"])
def test_crd_schema_and_model_have_the_same_fields(kind: str, part: str) -> None:
    _, spec_model, status_model = CRDS[kind]
    model: type[BaseModel] = spec_model if part == "spec" else status_model
    model_schema = model.model_json_schema(by_alias=True)
    problems: list[str] = []
    compare(
        root_schema(kind)["properties"][part],
        model_schema,
        model_schema.get("$defs", {}),
        f"{kind}.{part}",
        problems,
        check_required=part == "spec",
    )
    assert problems == []


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(walk(value, f"{path}[{i}]"))
    return found


def test_enums_are_the_contract_allow_lists() -> None:
    schema = root_schema("TrainingJob")["properties"]["spec"]["properties"]
    assert schema["dataset"]["properties"]["builtin"]["enum"] == list(contract.BUILTIN_DATASETS)
    assert schema["model"]["properties"]["estimator"]["enum"] == list(contract.ESTIMATORS)
    metric_enums = [
        node["enum"]
        for path, node in walk(schema)
        if path.endswith(("metric", "metrics.items")) and "enum" in node
    ]
    assert len(metric_enums) == 3  # validation.metrics, validation.gate[].metric, search.metric
    assert all(enum == list(contract.METRICS) for enum in metric_enums)


def test_crds_are_structural_and_well_formed() -> None:
    for kind in CRDS:
        definition = crd(kind)
        names = definition["spec"]["names"]
        assert definition["metadata"]["name"] == f"{names['plural']}.modelyard.io"
        assert names["categories"] == ["modelyard"]
        version = definition["spec"]["versions"][0]
        assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        assert columns[-1] == "Age"
        for path, node in walk(version["schema"]["openAPIV3Schema"]):
            is_schema = (
                path == ""
                or any(path.endswith(suffix) for suffix in (".additionalProperties", ".items"))
                or (".properties." in path and path.rsplit(".", 2)[-2] == "properties")
            )
            if is_schema and not opaque(node):
                assert "type" in node, f"{kind}{path}: structural schemas need a type"
    assert crd("TrainingJob")["spec"]["names"]["shortNames"] == ["tj"]
    assert crd("ModelDeployment")["spec"]["names"]["shortNames"] == ["md"]


# --- samples -------------------------------------------------------------------------------------


def samples() -> list[dict[str, Any]]:
    docs = []
    for path in sorted((ROOT / "manifests" / "samples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("apiVersion") == "modelyard.io/v1alpha1":
                docs.append(doc)
    return docs


def schema_errors(kind: str, obj: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft4Validator(root_schema(kind))
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(obj)]


def test_samples_exist_for_both_kinds() -> None:
    assert {doc["kind"] for doc in samples()} == {"TrainingJob", "ModelDeployment"}


@pytest.mark.parametrize("sample", samples(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_sample_validates_against_crd_and_model(sample: dict[str, Any]) -> None:
    kind = sample["kind"]
    assert schema_errors(kind, sample) == []
    CRDS[kind][1].model_validate(sample["spec"])


def test_iris_sample_is_what_the_quick_start_promises() -> None:
    tj = next(d for d in samples() if d["kind"] == "TrainingJob")
    spec = TrainingJobSpec.model_validate(tj["spec"])
    assert spec.dataset.builtin == "iris"
    assert spec.validation.cv_folds == 5
    assert [(g.metric, g.min) for g in spec.validation.gate] == [("accuracy", 0.9)]
    assert spec.search is not None and spec.search.strategy == "grid"
    md = next(d for d in samples() if d["kind"] == "ModelDeployment")
    assert md["spec"]["model"]["trainingJobRef"]["name"] == tj["metadata"]["name"]


# --- CEL rules: the equivalent pydantic validators on the same cases -----------------------------

TJ: dict[str, Any] = {
    "dataset": {"builtin": "iris"},
    "model": {"estimator": "LogisticRegression"},
}
MD: dict[str, Any] = {"model": {"trainingJobRef": {"name": "iris"}}}
CPU = {"requests": {"cpu": "100m"}}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


GRID = {"parameters": {"C": {"values": [0.1, 1.0]}}}
RETRAIN_FROM = {"trainingJobRef": {"name": "iris"}}

# (CEL rule message, kind, spec the CEL rule rejects, a neighbour it accepts)
CEL_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "set exactly one of builtin or uri",
        "TrainingJob",
        with_(TJ, dataset={"builtin": "iris", "uri": "pvc://d/x.csv", "target": "y"}),
        TJ,
    ),
    ("set exactly one of builtin or uri", "TrainingJob", with_(TJ, dataset={}), TJ),
    (
        "a file dataset needs a target column",
        "TrainingJob",
        with_(TJ, dataset={"uri": "pvc://d/x.csv"}),
        with_(TJ, dataset={"uri": "pvc://d/x.csv", "target": "y"}),
    ),
    (
        "cvFolds must be 0 (off) or at least 2",
        "TrainingJob",
        with_(TJ, validation={"cvFolds": 1}),
        with_(TJ, validation={"cvFolds": 0}),
    ),
    (
        "a gate sets min, max or both",
        "TrainingJob",
        with_(TJ, validation={"gate": [{"metric": "accuracy"}]}),
        with_(TJ, validation={"gate": [{"metric": "accuracy", "max": 1}]}),
    ),
    (
        "metrics (validation.metrics, validation.gate, search.metric) must fit the estimator's "
        "task: accuracy/f1/precision/recall/roc_auc for classifiers, r2/rmse/mae for regressors",
        "TrainingJob",
        with_(TJ, validation={"gate": [{"metric": "r2", "min": 0.5}]}),
        with_(
            TJ,
            model={"estimator": "Ridge"},
            dataset={"builtin": "diabetes"},
            validation={"gate": [{"metric": "r2", "min": 0.5}]},
        ),
    ),
    (
        "metrics (validation.metrics, validation.gate, search.metric) must fit the estimator's "
        "task: accuracy/f1/precision/recall/roc_auc for classifiers, r2/rmse/mae for regressors",
        "TrainingJob",
        with_(TJ, model={"estimator": "Ridge"}, validation={"metrics": ["accuracy"]}),
        with_(TJ, model={"estimator": "Ridge"}, validation={"metrics": ["rmse"]}),
    ),
    (
        "metrics (validation.metrics, validation.gate, search.metric) must fit the estimator's "
        "task: accuracy/f1/precision/recall/roc_auc for classifiers, r2/rmse/mae for regressors",
        "TrainingJob",
        with_(TJ, search={**GRID, "metric": "mae"}),
        with_(TJ, search={**GRID, "metric": "f1"}),
    ),
    (
        "grid search needs values lists, not ranges",
        "TrainingJob",
        with_(TJ, search={"parameters": {"C": {"min": 0.1, "max": 10}}}),
        with_(TJ, search={"strategy": "random", "parameters": {"C": {"min": 0.1, "max": 10}}}),
    ),
    (
        "a parameter range needs min <= max",
        "TrainingJob",
        with_(TJ, search={"strategy": "random", "parameters": {"C": {"min": 10, "max": 1}}}),
        with_(TJ, search={"strategy": "random", "parameters": {"C": {"min": 1, "max": 1}}}),
    ),
    (
        "a parameter range needs min <= max",
        "TrainingJob",
        with_(TJ, search={"strategy": "random", "parameters": {"C": {"min": 1}}}),
        with_(TJ, search={"strategy": "random", "parameters": {"C": {"min": 1, "max": 2}}}),
    ),
    (
        "a log-scale range needs min > 0",
        "TrainingJob",
        with_(
            TJ,
            search={
                "strategy": "random",
                "parameters": {"C": {"min": 0, "max": 1, "scale": "log"}},
            },
        ),
        with_(
            TJ,
            search={
                "strategy": "random",
                "parameters": {"C": {"min": 0.001, "max": 1, "scale": "log"}},
            },
        ),
    ),
    (
        "set exactly one of trainingJobRef or storageUri",
        "ModelDeployment",
        with_(MD, model={"trainingJobRef": {"name": "a"}, "storageUri": "pvc://m/a/v1"}),
        MD,
    ),
    ("set exactly one of trainingJobRef or storageUri", "ModelDeployment", with_(MD, model={}), MD),
    (
        "sha256 pins a storageUri; a trainingJobRef brings its own",
        "ModelDeployment",
        with_(MD, model={"trainingJobRef": {"name": "a"}, "sha256": "a" * 64}),
        with_(MD, model={"storageUri": "pvc://m/a/v1", "sha256": "a" * 64}),
    ),
    (
        "set replicas or autoscaling, not both (the HPA owns replicas)",
        "ModelDeployment",
        with_(MD, replicas=2, autoscaling={"maxReplicas": 3}, resources=CPU),
        with_(MD, autoscaling={"maxReplicas": 3}, resources=CPU),
    ),
    (
        "minReplicas must not exceed maxReplicas",
        "ModelDeployment",
        with_(MD, autoscaling={"minReplicas": 4, "maxReplicas": 3}, resources=CPU),
        with_(MD, autoscaling={"minReplicas": 3, "maxReplicas": 3}, resources=CPU),
    ),
    (
        "autoscaling scales on CPU utilization, which needs resources.requests.cpu",
        "ModelDeployment",
        with_(MD, autoscaling={"maxReplicas": 3}, resources={"requests": {"memory": "1Gi"}}),
        with_(MD, autoscaling={"maxReplicas": 3}, resources=CPU),
    ),
    (
        "interval: at least 5s between checks",
        "ModelDeployment",
        with_(MD, monitoring={"drift": {"enabled": True, "interval": "4s"}}),
        with_(MD, monitoring={"drift": {"enabled": True, "interval": "5s"}}),
    ),
    (
        "canary.steps: increasing percentages, each from 1 to 99",
        "ModelDeployment",
        with_(MD, rollout={"strategy": "Canary", "canary": {"steps": [50, 25]}}),
        with_(MD, rollout={"strategy": "Canary", "canary": {"steps": [25, 50]}}),
    ),
    (
        "analysis.interval: at least 1s between checks",
        "ModelDeployment",
        with_(MD, rollout={"canary": {"analysis": {"interval": "0s"}}}),
        with_(MD, rollout={"canary": {"analysis": {"interval": "1s"}}}),
    ),
    (
        "retraining: the Schedule trigger needs a schedule (cron)",
        "ModelDeployment",
        with_(MD, retraining={"triggers": ["Schedule"], "template": RETRAIN_FROM}),
        with_(
            MD,
            retraining={
                "triggers": ["Schedule"],
                "schedule": "0 3 * * 0",
                "template": RETRAIN_FROM,
            },
        ),
    ),
    (
        "retraining.template: set exactly one of trainingJobRef or spec",
        "ModelDeployment",
        with_(MD, retraining={"template": {**RETRAIN_FROM, "spec": TJ}}),
        with_(MD, retraining={"template": {"spec": TJ}}),
    ),
]

# CEL rules on metadata.name (root level): the operator's twin is a function of the name.
NAME_CEL_CASES: list[tuple[str, list[str], list[str]]] = [
    (
        MODEL_DEPLOYMENT_NAME_MESSAGE,
        ["2024-iris", "iris.v2", "a" * 64, "Iris", "iris-"],
        ["iris", "iris-v2", "a" * 63],
    ),
]


@pytest.mark.parametrize(("message", "invalid", "valid"), NAME_CEL_CASES)
def test_name_cel_rule_and_its_twin(message: str, invalid: list[str], valid: list[str]) -> None:
    rules = root_schema("ModelDeployment")["x-kubernetes-validations"]
    rule = next(r for r in rules if r["message"] == message)["rule"]
    # the rule's regex and bound, checked the way CEL evaluates them (RE2 full-string match)
    pattern = rule.split("matches('")[1].split("')")[0]
    for name in invalid:
        assert model_deployment_name_error(name) is not None, name
        assert not (re.fullmatch(pattern, name) and len(name) <= 63), name
    for name in valid:
        assert model_deployment_name_error(name) is None, name
        assert re.fullmatch(pattern, name) and len(name) <= 63, name


def as_object(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "modelyard.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x"},
        "spec": spec,
    }


@pytest.mark.parametrize(
    ("message", "kind", "invalid", "valid"), CEL_CASES, ids=[c[0][:40] for c in CEL_CASES]
)
def test_cel_rule_and_its_pydantic_twin(
    message: str, kind: str, invalid: dict[str, Any], valid: dict[str, Any]
) -> None:
    model = CRDS[kind][1]
    # the plain schema cannot say it (that is why it is a CEL rule) ...
    assert schema_errors(kind, as_object(kind, invalid)) == []
    # ... the model's validator says it ...
    with pytest.raises(ValidationError):
        model.model_validate(invalid)
    # ... and the neighbour passes both
    assert schema_errors(kind, as_object(kind, valid)) == []
    model.model_validate(valid)


def test_every_cel_rule_has_cases() -> None:
    messages = {
        node["message"]
        for kind in CRDS
        for _, node in walk(root_schema(kind))
        if "rule" in node and "message" in node
    }
    assert messages == {case[0] for case in CEL_CASES} | {case[0] for case in NAME_CEL_CASES}


# (kind, spec) the plain schema rejects, and so does the model
SCHEMA_CASES = [
    ("TrainingJob", with_(TJ, model={"estimator": "os.system"})),
    ("TrainingJob", with_(TJ, dataset={"builtin": "mnist"})),
    ("TrainingJob", with_(TJ, dataset={"uri": "http://x/y.csv", "target": "y"})),
    ("TrainingJob", with_(TJ, validation={"testSize": 1})),
    ("TrainingJob", with_(TJ, validation={"cvFolds": 21})),
    ("TrainingJob", with_(TJ, validation={"metrics": ["auc"]})),
    ("TrainingJob", with_(TJ, search={"parameters": {}})),
    ("TrainingJob", with_(TJ, search={**GRID, "maxTrials": 0})),
    # values XOR a range: a structural oneOf, since CEL cannot see the untyped `values` items
    (
        "TrainingJob",
        with_(
            TJ,
            search={
                "strategy": "random",
                "parameters": {"C": {"values": [1], "min": 0.1, "max": 10}},
            },
        ),
    ),
    (
        "TrainingJob",
        with_(TJ, search={"strategy": "random", "parameters": {"C": {"scale": "log"}}}),
    ),
    ("TrainingJob", with_(TJ, output={"storageUri": "s3://bucket/x"})),
    ("TrainingJob", with_(TJ, output={"storageUri": "pvc://c/../../tmp/x"})),
    ("TrainingJob", with_(TJ, dataset={"uri": "pvc://d/../../etc/passwd", "target": "y"})),
    ("TrainingJob", with_(TJ, dataset={"uri": "file:///mnt/models/x.csv", "target": "y"})),
    ("ModelDeployment", with_(MD, model={"storageUri": "pvc://m/iris/../wine/v1"})),
    ("TrainingJob", with_(TJ, backoffLimit=-1)),
    ("TrainingJob", with_(TJ, seed=-1)),
    ("TrainingJob", with_(TJ, unknownField=1)),
    ("ModelDeployment", with_(MD, replicas=-1)),
    ("ModelDeployment", with_(MD, model={"storageUri": "pvc://m/a", "sha256": "XYZ"})),
    ("ModelDeployment", with_(MD, autoscaling={"minReplicas": 1}, resources=CPU)),
    (
        "ModelDeployment",
        with_(
            MD,
            autoscaling={"maxReplicas": 2, "targetCPUUtilizationPercentage": 0},
            resources=CPU,
        ),
    ),
]


@pytest.mark.parametrize(("kind", "spec"), SCHEMA_CASES)
def test_schema_rules_agree(kind: str, spec: dict[str, Any]) -> None:
    strict = copy.deepcopy(root_schema(kind))
    # Kubernetes prunes unknown fields; pydantic forbids them. Check that as "no such field".
    strict["properties"]["spec"]["additionalProperties"] = False
    errors = list(jsonschema.Draft4Validator(strict).iter_errors(as_object(kind, spec)))
    assert errors, f"the CRD schema accepts {spec}"
    with pytest.raises(ValidationError):
        CRDS[kind][1].model_validate(spec)
