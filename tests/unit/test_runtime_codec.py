"""V2 request decoding and validation, and response encoding (no HTTP)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from modelyard_runtime.contract import FeatureInfo
from modelyard_runtime.serve.codec import (
    Signature,
    V2Error,
    decode_request,
    encode_response,
    parse_json,
)
from modelyard_runtime.serve.errors import Code

NUMERIC = Signature(
    features=[FeatureInfo(name=n, dtype="float64", kind="numeric") for n in ("a", "b", "c")],
    outputs=("predict", "predict_proba"),
)
MIXED = Signature(
    features=[
        FeatureInfo(name="age", dtype="float64", kind="numeric"),
        FeatureInfo(name="city", dtype="object", kind="categorical"),
        FeatureInfo(name="member", dtype="bool", kind="categorical"),
    ],
    outputs=("predict",),
)


def tensor(name: str, shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def decode(request: dict[str, Any], signature: Signature = NUMERIC):
    return decode_request(parse_json(orjson.dumps(request)), signature)


def rejected(request: dict[str, Any], signature: Signature = NUMERIC) -> str:
    with pytest.raises(V2Error) as caught:
        decode(request, signature)
    assert caught.value.code is Code.INVALID
    return caught.value.message


def test_matrix_of_numbers() -> None:
    request = decode({"inputs": [tensor("x", [2, 3], "FP64", [1, 2, 3, 4.5, 5, 6])]})
    assert request.x.dtype == np.float64
    np.testing.assert_array_equal(request.x, [[1, 2, 3], [4.5, 5, 6]])  # integers fit FP64
    assert request.outputs == ("predict",)
    assert request.id is None


@pytest.mark.parametrize("datatype", ["FP32", "FP16", "INT64", "INT32", "UINT8", "BOOL", "BYTES"])
def test_a_datatype_the_model_does_not_declare_is_refused_not_coerced(datatype: str) -> None:
    data = (
        [True, False, True]
        if datatype == "BOOL"
        else ["1", "2", "3"]
        if datatype == "BYTES"
        else [1, 2, 3]
    )
    message = rejected({"inputs": [tensor("x", [1, 3], datatype, data)]})
    assert f"datatype {datatype}, but this model's feature matrix is FP64" in message
    column = rejected(
        {
            "inputs": [
                tensor("a", [1], "FP64", [1]),
                tensor("b", [1], datatype, data[:1]),
                tensor("c", [1], "FP64", [1]),
            ]
        }
    )
    assert f"datatype {datatype}, but numeric feature 'b' is FP64" in column


def test_nested_data_equals_flat_data() -> None:
    flat = decode({"inputs": [tensor("x", [2, 3], "FP64", [1.5, 2, 3, 4, 5, 6])]})
    nested = decode({"inputs": [tensor("x", [2, 3], "FP64", [[1.5, 2, 3], [4, 5, 6]])]})
    np.testing.assert_array_equal(flat.x, nested.x)


def test_one_input_per_feature_column_in_any_order() -> None:
    request = decode(
        {
            "inputs": [
                tensor("c", [2], "FP64", [5, 6]),
                tensor("a", [2], "FP64", [1, 2]),
                tensor("b", [2, 1], "FP64", [[3], [4]]),
            ]
        }
    )
    np.testing.assert_array_equal(request.x, [[1, 3, 5], [2, 4, 6]])


def test_id_outputs_and_extra_parameters() -> None:
    request = decode(
        {
            "id": "req-1",
            "parameters": {"binary_data_output": False, "x": [1]},
            "inputs": [
                {**tensor("x", [1, 3], "FP64", [1, 2, 3]), "parameters": {"binary_data": False}}
            ],
            "outputs": [
                {"name": "predict_proba", "parameters": {"binary_data": False}},
                {"name": "predict"},
            ],
        }
    )
    assert request.id == "req-1"
    assert request.outputs == ("predict_proba", "predict")


def test_mixed_model_by_columns() -> None:
    request = decode(
        {
            "inputs": [
                tensor("age", [2], "FP64", [30, 41.5]),
                tensor("city", [2], "BYTES", ["Oslo", "Rome"]),
                tensor("member", [2], "BOOL", [True, False]),
            ]
        },
        MIXED,
    )
    assert request.x.dtype == object
    assert request.x.tolist() == [[30.0, "Oslo", True], [41.5, "Rome", False]]


def test_mixed_model_by_bytes_matrix() -> None:
    request = decode({"inputs": [tensor("x", [1, 3], "BYTES", [["30", "Oslo", "true"]])]}, MIXED)
    assert request.x.tolist() == [[30.0, "Oslo", True]]


@pytest.mark.parametrize(
    ("request_body", "fragment"),
    [
        ({}, "inputs"),
        ({"inputs": []}, "inputs"),
        ({"inputs": [tensor("x", [2, 3], "FP64", [1, 2, 3])]}, "needs 6 elements"),
        ({"inputs": [tensor("x", [1, 4], "FP64", [1, 2, 3, 4])]}, "[batch, 3]"),
        ({"inputs": [tensor("x", [3], "FP64", [1, 2, 3])]}, "one input of shape"),
        ({"inputs": [tensor("x", [1, 3], "FP64", ["a", "b", "c"])]}, "needs numbers"),
        ({"inputs": [tensor("x", [1, 3], "FP64", [1, None, 3])]}, "null"),
        ({"inputs": [tensor("x", [1, 3], "FP64", [True, False, True])]}, "not true/false"),
        ({"inputs": [tensor("x", [1, 3], "COMPLEX", [1, 2, 3])]}, "unsupported datatype"),
        ({"inputs": [tensor("x", [1, -3], "FP64", [1, 2, 3])]}, "non-negative"),
        ({"inputs": [tensor("x", [2, 3], "FP64", [[1, 2, 3], [4, 5]])]}, "ragged"),
        ({"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64"}]}, "no 'data'"),
        (
            {"inputs": [tensor("x", [1, 3], "FP64", [1, 2, 3])], "outputs": [{"name": "nope"}]},
            "unknown output",
        ),
        ({"inputs": [tensor("a", [1], "FP64", [1]), tensor("b", [1], "FP64", [1])]}, "missing"),
        (
            {
                "inputs": [
                    tensor("a", [1], "FP64", [1]),
                    tensor("b", [2], "FP64", [1, 2]),
                    tensor("c", [1], "FP64", [1]),
                ]
            },
            "batch size",
        ),
        ({"id": 5, "inputs": [tensor("x", [1, 3], "FP64", [1, 2, 3])]}, "'id'"),
    ],
)
def test_invalid_requests(request_body: dict[str, Any], fragment: str) -> None:
    assert fragment in rejected(request_body)


def test_numeric_tensor_for_categorical_model_is_refused() -> None:
    message = rejected({"inputs": [tensor("x", [1, 3], "FP64", [1, 2, 3])]}, MIXED)
    assert "BYTES" in message


def test_categorical_column_needs_strings() -> None:
    message = rejected(
        {
            "inputs": [
                tensor("age", [1], "FP64", [3]),
                tensor("city", [1], "INT64", [4]),
                tensor("member", [1], "BOOL", [True]),
            ]
        },
        MIXED,
    )
    assert "BYTES" in message


@pytest.mark.parametrize(
    "body", [b"", b"{", b"[1, 2]", b'{"inputs": [NaN]}', b"\xff\xfe", b'{"a": 1e999}']
)
def test_malformed_json(body: bytes) -> None:
    with pytest.raises(V2Error) as caught:
        parse_json(body)
    assert caught.value.code is Code.INVALID


def test_encode_response() -> None:
    body = orjson.loads(
        encode_response(
            "iris",
            "v1",
            "r1",
            {
                "predict": np.array([0, 2]),
                "predict_proba": np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]]),
            },
        )
    )
    assert body == {
        "model_name": "iris",
        "model_version": "v1",
        "id": "r1",
        "outputs": [
            {"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 2]},
            {
                "name": "predict_proba",
                "shape": [2, 3],
                "datatype": "FP64",
                "data": [0.9, 0.1, 0.0, 0.0, 0.2, 0.8],
            },
        ],
    }


def test_encode_string_labels() -> None:
    body = orjson.loads(encode_response("m", "v1", None, {"predict": np.array(["a", "b"])}))
    assert "id" not in body
    assert body["outputs"][0] == {
        "name": "predict",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["a", "b"],
    }


def _binary_request(
    inputs: list[tuple[str, list[int], str, bytes]],
) -> tuple[dict[str, Any], bytes]:
    header = {
        "inputs": [
            {"name": n, "shape": s, "datatype": d, "parameters": {"binary_data_size": len(b)}}
            for n, s, d, b in inputs
        ]
    }
    return header, b"".join(b for *_, b in inputs)


def test_binary_tensor_extension() -> None:
    values = np.arange(6, dtype="<f8")
    header, binary = _binary_request([("x", [2, 3], "FP64", values.tobytes())])
    request = decode_request(header, NUMERIC, binary)
    np.testing.assert_array_equal(request.x, values.reshape(2, 3))


def test_binary_bytes_columns() -> None:
    def strings(*items: str) -> bytes:
        return b"".join(len(i.encode()).to_bytes(4, "little") + i.encode() for i in items)

    header, binary = _binary_request(
        [
            ("age", [2], "FP64", np.array([30.0, 41.0]).tobytes()),
            ("city", [2], "BYTES", strings("Oslo", "Zürich")),
            ("member", [2], "BOOL", np.array([True, False]).tobytes()),
        ]
    )
    request = decode_request(header, MIXED, binary)
    assert request.x.tolist() == [[30.0, "Oslo", True], [41.0, "Zürich", False]]


@pytest.mark.parametrize("cut", [1, 8])
def test_binary_size_mismatch(cut: int) -> None:
    header, binary = _binary_request([("x", [2, 3], "FP64", np.zeros(6).tobytes())])
    with pytest.raises(V2Error):
        decode_request(header, NUMERIC, binary[:-cut])


def test_binary_non_finite_is_refused() -> None:
    header, binary = _binary_request([("x", [1, 3], "FP64", np.array([1, np.nan, 2]).tobytes())])
    with pytest.raises(V2Error, match="NaN"):
        decode_request(header, NUMERIC, binary)
