"""scikit-learn's averaging trees (decision trees, random forests, extra trees) as ONNX in double
precision: ai.onnx.ml TreeEnsemble (opset 5), whose splits and leaf weights are doubles.

skl2onnx 1.20 writes these models as TreeEnsembleClassifier/Regressor, whose probabilities ONNX
Runtime computes in float32: rows near a boundary change class and the parity check rejects
the graph. This converter reproduces scikit-learn's own arithmetic instead:

- a tree compares a float32 copy of each feature with a double threshold (scikit-learn casts X
  to float32 before it applies a tree): Cast(float) -> Cast(double) -> splits ``x <= t``;
- a classifier's per-tree probabilities are its leaves' class fractions, normalised as
  scikit-learn does; TreeEnsemble leaves carry one target each, so each tree is written once
  per class; the sum over trees is divided by their number afterwards (as scikit-learn sums,
  then divides: votes of pure leaves stay exact integers, and so do ties), and the label is
  the class at the first maximum (``classes_.take(argmax(proba))``);
- a regressor's prediction is the mean of its trees' leaf values.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ML_OPSET = 5  # ai.onnx.ml TreeEnsemble
# skl2onnx 1.20 refuses to write ai.onnx.ml 5 ("not supported yet by this library"): the node is
# declared at the version skl2onnx accepts and the model's import raised after conversion.
DECLARED_ML_OPSET = 3
BRANCH_LEQ = 0


@dataclass
class _Ensemble:
    """TreeEnsemble's attributes, appended tree by tree."""

    roots: list[int] = field(default_factory=list)
    features: list[int] = field(default_factory=list)
    splits: list[float] = field(default_factory=list)
    true_ids: list[int] = field(default_factory=list)
    true_leafs: list[int] = field(default_factory=list)
    false_ids: list[int] = field(default_factory=list)
    false_leafs: list[int] = field(default_factory=list)
    leaf_targets: list[int] = field(default_factory=list)
    leaf_weights: list[float] = field(default_factory=list)

    def add(self, tree: Any, weights: np.ndarray, target: int) -> None:
        """One fitted ``tree_``, each leaf contributing ``weights[node]`` to ``target``."""
        left, right = tree.children_left, tree.children_right
        leaf_of: dict[int, int] = {}
        node_of: dict[int, int] = {}
        internal = [i for i in range(tree.node_count) if left[i] != -1]
        for i in range(tree.node_count):
            if left[i] == -1:
                leaf_of[i] = len(self.leaf_weights)
                self.leaf_targets.append(target)
                self.leaf_weights.append(float(weights[i]))
        base = len(self.features)
        for position, i in enumerate(internal):
            node_of[i] = base + position
        if not internal:  # a single leaf: one node whose branches both reach it
            self.roots.append(base)
            self._node(0, 0.0, (leaf_of[0], 1), (leaf_of[0], 1))
            return
        self.roots.append(node_of[0])
        for i in internal:
            self._node(
                int(tree.feature[i]),
                float(tree.threshold[i]),
                _branch(int(left[i]), leaf_of, node_of),
                _branch(int(right[i]), leaf_of, node_of),
            )

    def _node(
        self, feature: int, split: float, true: tuple[int, int], false: tuple[int, int]
    ) -> None:
        self.features.append(feature)
        self.splits.append(split)
        self.true_ids.append(true[0])
        self.true_leafs.append(true[1])
        self.false_ids.append(false[0])
        self.false_leafs.append(false[1])

    def attributes(self, n_targets: int) -> dict[str, Any]:
        from onnx import numpy_helper

        return {
            "aggregate_function": 1,  # SUM
            "post_transform": 0,  # NONE
            "n_targets": n_targets,
            "tree_roots": self.roots,
            "nodes_featureids": self.features,
            "nodes_modes": numpy_helper.from_array(
                np.full(len(self.features), BRANCH_LEQ, dtype=np.uint8)
            ),
            "nodes_splits": numpy_helper.from_array(np.asarray(self.splits, dtype=np.float64)),
            "nodes_truenodeids": self.true_ids,
            "nodes_trueleafs": self.true_leafs,
            "nodes_falsenodeids": self.false_ids,
            "nodes_falseleafs": self.false_leafs,
            "leaf_targetids": self.leaf_targets,
            "leaf_weights": numpy_helper.from_array(
                np.asarray(self.leaf_weights, dtype=np.float64)
            ),
        }


def _branch(child: int, leaf_of: dict[int, int], node_of: dict[int, int]) -> tuple[int, int]:
    return (leaf_of[child], 1) if child in leaf_of else (node_of[child], 0)


def _trees(model: Any) -> list[Any]:
    """The fitted ``tree_`` of each tree a model averages over (a single tree: itself)."""
    estimators = getattr(model, "estimators_", None)
    return [e.tree_ for e in estimators] if estimators is not None else [model.tree_]


def _class_fractions(tree: Any) -> np.ndarray:
    """[node, class]: a node's class fractions, normalised as DecisionTreeClassifier does."""
    value = tree.value[:, 0, :]
    total = value.sum(axis=1, keepdims=True)
    total[total == 0.0] = 1.0
    fractions: np.ndarray = value / total
    return fractions


def _float32_copy(scope: Any, container: Any, x: str) -> str:
    from onnx import TensorProto

    narrowed: str = scope.get_unique_variable_name("x_as_float32")
    widened: str = scope.get_unique_variable_name("x_float32_as_double")
    container.add_node("Cast", [x], [narrowed], to=TensorProto.FLOAT)
    container.add_node("Cast", [narrowed], [widened], to=TensorProto.DOUBLE)
    return widened


def _ensemble_node(scope: Any, container: Any, x: str, ensemble: _Ensemble, n: int) -> str:
    sums: str = scope.get_unique_variable_name("tree_sums")
    container.add_node(
        "TreeEnsemble",
        [_float32_copy(scope, container, x)],
        [sums],
        op_domain="ai.onnx.ml",
        op_version=DECLARED_ML_OPSET,
        **ensemble.attributes(n),
    )
    return sums


def _divide(scope: Any, container: Any, value: str, by: int, output: str) -> None:
    from onnx import TensorProto

    count = scope.get_unique_variable_name("tree_count")
    container.add_initializer(count, TensorProto.DOUBLE, [], [float(by)])
    container.add_node("Div", [value, count], [output])


def _convert_classifier(scope: Any, operator: Any, container: Any) -> None:
    from onnx import TensorProto

    model = operator.raw_operator
    if model.n_outputs_ != 1:
        raise NotImplementedError("multi-output trees")
    classes = np.asarray(model.classes_)
    trees = _trees(model)
    ensemble = _Ensemble()
    for tree in trees:
        fractions = _class_fractions(tree)
        for k in range(len(classes)):
            ensemble.add(tree, fractions[:, k], k)
    sums = _ensemble_node(scope, container, operator.inputs[0].full_name, ensemble, len(classes))
    probabilities = operator.outputs[1].full_name
    _divide(scope, container, sums, len(trees), probabilities)
    index = scope.get_unique_variable_name("label_index")
    container.add_node("ArgMax", [probabilities], [index], axis=1, keepdims=0)
    table = scope.get_unique_variable_name("classes")
    if classes.dtype.kind in "iub":
        container.add_initializer(table, TensorProto.INT64, [len(classes)], classes.tolist())
    else:
        container.add_initializer(
            table, TensorProto.STRING, [len(classes)], [str(c).encode() for c in classes]
        )
    container.add_node("Gather", [table, index], [operator.outputs[0].full_name], axis=0)


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    model = operator.raw_operator
    if model.n_outputs_ != 1:
        raise NotImplementedError("multi-output trees")
    trees = _trees(model)
    ensemble = _Ensemble()
    for tree in trees:
        ensemble.add(tree, tree.value[:, 0, 0], 0)
    sums = _ensemble_node(scope, container, operator.inputs[0].full_name, ensemble, 1)
    _divide(scope, container, sums, len(trees), operator.outputs[0].full_name)


def raise_ml_opset(model: Any) -> dict[str, int]:
    """The ONNX model's imports, with ai.onnx.ml at ML_OPSET where a TreeEnsemble needs it
    (the other ai.onnx.ml operators are the same at 3 and 5); the imports as a dict."""
    if any(n.op_type == "TreeEnsemble" for n in model.graph.node):
        for opset in model.opset_import:
            if opset.domain == "ai.onnx.ml":
                opset.version = ML_OPSET
    return {opset.domain: opset.version for opset in model.opset_import}


def _classifier_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType, StringTensorType

    classes = np.asarray(operator.raw_operator.classes_)
    rows = operator.inputs[0].get_first_dimension()
    label = Int64TensorType if classes.dtype.kind in "iub" else StringTensorType
    operator.outputs[0].type = label(shape=[rows])
    operator.outputs[1].type = DoubleTensorType(shape=[rows, len(classes)])


def _regressor_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import DoubleTensorType

    operator.outputs[0].type = DoubleTensorType(shape=[operator.inputs[0].get_first_dimension(), 1])


@functools.cache
def register_double_trees() -> None:
    """Make skl2onnx write the averaging trees with the converters above."""
    from skl2onnx import update_registered_converter
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    for classifier in (RandomForestClassifier, ExtraTreesClassifier, DecisionTreeClassifier):
        update_registered_converter(
            classifier,
            f"Modelyard{classifier.__name__}",
            _classifier_shapes,
            _convert_classifier,
            options={"zipmap": [False, True], "nocl": [False, True]},
            overwrite=True,
        )
    for regressor in (RandomForestRegressor, ExtraTreesRegressor, DecisionTreeRegressor):
        update_registered_converter(
            regressor,
            f"Modelyard{regressor.__name__}",
            _regressor_shapes,
            _convert_regressor,
            overwrite=True,
        )
