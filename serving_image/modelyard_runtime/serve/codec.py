"""Open Inference Protocol V2 request decoding and response encoding, without HTTP.

Accepted inputs (documented in the README):
- one tensor holding the feature matrix, shape ``[batch, n_features]`` in feature order:
  BOOL/UINT*/INT*/FP* for numeric models; BYTES (strings, numbers allowed in numeric columns)
  when the model has categorical features;
- or one input per feature column, named after the feature, shape ``[batch]`` (or
  ``[batch, 1]``), numeric datatypes for numeric features, BYTES for categorical ones, BOOL for
  boolean ones.

Tensor data may also come in the binary tensor data extension (what ``tritonclient`` sends
by default): the body is the JSON header (``Inference-Header-Content-Length`` bytes) followed
by each input's raw little-endian bytes, sized by its ``parameters.binary_data_size``.
Outputs are always answered as JSON data, which such clients read as well.

JSON has no NaN or infinity, and a null is not a number: non-finite or missing values are
refused as invalid (the imputers in the pipeline exist for the training data, not as a way to
send holes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelyard_runtime.contract import FeatureInfo
from modelyard_runtime.serve.errors import Code, V2Error

NUMERIC_DATATYPES = frozenset(
    {
        "BOOL",
        "UINT8",
        "UINT16",
        "UINT32",
        "UINT64",
        "INT8",
        "INT16",
        "INT32",
        "INT64",
        "FP16",
        "FP32",
        "FP64",
    }
)
DATATYPES = NUMERIC_DATATYPES | {"BYTES"}
_BINARY_DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_INT_KINDS = frozenset("iub")
_NUMBER_KINDS = frozenset("iubf")


def bad(message: str) -> V2Error:
    return V2Error(Code.INVALID, message)


@dataclass(frozen=True)
class Signature:
    """What the decoder needs to know about the model."""

    features: Sequence[FeatureInfo]
    outputs: Sequence[str]  # the output names this model offers; the first is the default

    @property
    def numeric_only(self) -> bool:
        return all(f.kind == "numeric" for f in self.features)


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    x: np.ndarray  # [batch, n_features]: float64, or object for mixed feature kinds
    outputs: tuple[str, ...]


def parse_json(body: bytes) -> dict[str, Any]:
    if not body:
        raise bad("empty request body: expected a JSON inference request")
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise bad(f"malformed JSON: {error}") from None
    if not isinstance(request, dict):
        raise bad("the inference request must be a JSON object")
    return request


def split_binary(body: bytes, header_length: int) -> tuple[bytes, bytes]:
    """(JSON header, binary tensor data) of a binary-extension request."""
    if header_length > len(body):
        raise bad(
            f"Inference-Header-Content-Length {header_length} exceeds the body of {len(body)} bytes"
        )
    return body[:header_length], body[header_length:]


def decode_request(
    request: dict[str, Any],
    signature: Signature,
    binary: bytes | None = None,
) -> InferRequest:
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise bad("'id' must be a string")
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise bad("'inputs' must be a non-empty list of tensors")
    if binary is not None:
        inputs = _attach_binary(inputs, binary)
    outputs = _requested_outputs(request.get("outputs"), signature)
    if len(inputs) == 1 and _is_matrix(inputs[0], signature):
        x = _decode_matrix(inputs[0], signature)
    else:
        x = _decode_columns(inputs, signature)
    return InferRequest(id=request_id, x=x, outputs=outputs)


def _attach_binary(inputs: list[Any], binary: bytes) -> list[Any]:
    """Give each input that carries ``binary_data_size`` its slice of the binary data."""
    attached, offset = [], 0
    for index, tensor in enumerate(inputs):
        parameters = tensor.get("parameters") if isinstance(tensor, dict) else None
        size = parameters.get("binary_data_size") if isinstance(parameters, dict) else None
        if size is None:
            attached.append(tensor)
            continue
        if not isinstance(size, int) or size < 0 or offset + size > len(binary):
            raise bad(
                f"input {index}: binary_data_size {size!r} does not fit the "
                f"{len(binary) - offset} bytes of binary data left"
            )
        chunk = binary[offset : offset + size]
        offset += size
        datatype = tensor.get("datatype")
        if datatype == "BYTES":
            data: Any = _length_prefixed_strings(chunk, index)
        elif datatype in _BINARY_DTYPES:
            dtype = _BINARY_DTYPES[datatype]
            if size % dtype.itemsize:
                raise bad(f"input {index}: {size} bytes is not a whole number of {datatype}")
            data = np.frombuffer(chunk, dtype=dtype)
        else:
            raise bad(f"input {index}: unsupported datatype {datatype!r}")
        attached.append({**tensor, "data": data})
    if offset != len(binary):
        raise bad(f"{len(binary) - offset} bytes of binary data belong to no input")
    return attached


def _length_prefixed_strings(chunk: bytes, index: int) -> np.ndarray:
    values, offset = [], 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise bad(f"input {index}: truncated BYTES element")
        length = int.from_bytes(chunk[offset : offset + 4], "little")
        offset += 4
        if offset + length > len(chunk):
            raise bad(f"input {index}: truncated BYTES element")
        try:
            values.append(chunk[offset : offset + length].decode())
        except UnicodeDecodeError:
            raise bad(f"input {index}: BYTES elements must be UTF-8 text") from None
        offset += length
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _requested_outputs(requested: Any, signature: Signature) -> tuple[str, ...]:
    if requested is None:
        return (signature.outputs[0],)
    if not isinstance(requested, list) or not requested:
        raise bad("'outputs' must be a non-empty list of {\"name\": ...} objects")
    names = []
    for item in requested:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            raise bad("each requested output needs a string 'name'")
        if name not in signature.outputs:
            raise bad(f"unknown output {name!r}; this model offers {list(signature.outputs)}")
        if name not in names:
            names.append(name)
    return tuple(names)


def _tensor_fields(tensor: Any, index: int) -> tuple[str, list[int], str, Any]:
    if not isinstance(tensor, dict):
        raise bad(f"input {index} must be an object with name, shape, datatype and data")
    name, shape, datatype = tensor.get("name"), tensor.get("shape"), tensor.get("datatype")
    if not isinstance(name, str):
        raise bad(f"input {index} needs a string 'name'")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise bad(f"input {name!r}: 'shape' must be a non-empty list of non-negative integers")
    if shape[0] == 0:
        # scikit-learn refuses an empty batch at predict time: say so as the client's error.
        raise bad(f"input {name!r}: shape {shape} holds no rows; send at least one")
    if datatype not in DATATYPES:
        raise bad(
            f"input {name!r}: unsupported datatype {datatype!r}; use one of {sorted(DATATYPES)}"
        )
    if "data" not in tensor:
        raise bad(
            f"input {name!r} has no 'data' (nor binary data announced by an "
            "Inference-Header-Content-Length header)"
        )
    return name, shape, datatype, tensor["data"]


def _is_matrix(tensor: Any, signature: Signature) -> bool:
    """A lone 2-D input is the feature matrix (for a one-feature model, ``[batch, 1]`` reads
    the same either way)."""
    return (
        isinstance(tensor, dict)
        and isinstance(tensor.get("shape"), list)
        and len(tensor["shape"]) == 2
    )


def _array(name: str, shape: list[int], datatype: str, data: Any) -> np.ndarray:
    """``data`` (flat or nested, row-major) as an array of ``shape``, type-checked."""
    from_binary = isinstance(data, np.ndarray)
    if not from_binary and not isinstance(data, list):
        raise bad(f"input {name!r}: 'data' must be a list")
    expected = math.prod(shape)
    try:
        array = np.asarray(data, dtype=object if datatype == "BYTES" else None)
    except (ValueError, OverflowError):
        raise bad(
            f"input {name!r}: 'data' is ragged; it must be flat or a regular nested list"
        ) from None
    if array.size != expected:
        raise bad(
            f"input {name!r}: shape {shape} needs {expected} elements, 'data' has {array.size}"
        )
    if datatype != "BYTES":
        kind = array.dtype.kind
        if kind not in _NUMBER_KINDS:
            raise bad(
                f"input {name!r}: datatype {datatype} needs numbers"
                + (" (null, NaN and infinity are not accepted)" if kind == "O" else "")
            )
        if datatype == "BOOL":
            if kind != "b":
                raise bad(f"input {name!r}: datatype BOOL needs true/false values")
        elif datatype.startswith(("INT", "UINT")):
            if kind not in _INT_KINDS:
                raise bad(f"input {name!r}: datatype {datatype} needs integers")
        elif kind == "b":
            raise bad(f"input {name!r}: datatype {datatype} needs numbers, not true/false")
        # orjson refuses NaN and infinity in JSON, so only raw binary data can carry them.
        elif kind == "f" and from_binary and not np.isfinite(array).all():
            raise bad(f"input {name!r}: NaN and infinity are not accepted")
    return array.reshape(shape)


def declared_datatype(info: FeatureInfo) -> str:
    """The datatype the model metadata declares for one feature's column."""
    if info.dtype == "bool":
        return "BOOL"
    return "BYTES" if info.kind == "categorical" else "FP64"


def _require(name: str, datatype: str, declared: str, what: str) -> None:
    """A tensor of another datatype than the model declares is refused, never coerced."""
    if datatype != declared:
        raise bad(
            f"input {name!r}: datatype {datatype}, but {what} is {declared} "
            "(the model metadata's inputs)"
        )


def _decode_matrix(tensor: Any, signature: Signature) -> np.ndarray:
    name, shape, datatype, data = _tensor_fields(tensor, 0)
    n_features = len(signature.features)
    if shape[1] != n_features:
        raise bad(
            f"input {name!r}: shape {shape} must be [batch, {n_features}] "
            f"(features {[f.name for f in signature.features]})"
        )
    if signature.numeric_only:
        _require(name, datatype, "FP64", "this model's feature matrix")
        return _array(name, shape, datatype, data).astype(np.float64, copy=False)
    array = _array(name, shape, datatype, data)
    if datatype != "BYTES":
        categorical = [f.name for f in signature.features if f.kind == "categorical"]
        raise bad(
            f"input {name!r}: this model has categorical features {categorical}; send "
            "the matrix as BYTES, or one input per feature column"
        )
    matrix = np.empty(shape, dtype=object)
    for j, info in enumerate(signature.features):
        matrix[:, j] = _column(array[:, j], info, f"{name}[:, {j}]")
    return matrix


def _decode_columns(inputs: list[Any], signature: Signature) -> np.ndarray:
    by_name: dict[str, tuple[str, list[int], str, Any]] = {}
    for index, tensor in enumerate(inputs):
        fields = _tensor_fields(tensor, index)
        if fields[0] in by_name:
            raise bad(f"input {fields[0]!r} is given twice")
        by_name[fields[0]] = fields
    names = [f.name for f in signature.features]
    unknown = sorted(set(by_name) - set(names))
    missing = [n for n in names if n not in by_name]
    if unknown or missing:
        if len(inputs) == 1:
            raise bad(
                f"expected one input of shape [batch, {len(names)}] holding the features "
                f"{names}, or one input per feature"
            )
        raise bad(
            f"inputs must be the feature columns {names}"
            + (f"; unknown: {unknown}" if unknown else "")
            + (f"; missing: {missing}" if missing else "")
        )
    batch: int | None = None
    columns: list[np.ndarray] = []
    for info in signature.features:
        name, shape, datatype, data = by_name[info.name]
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise bad(f"input {name!r}: shape {shape} must be [batch] or [batch, 1]")
        if batch is None:
            batch = shape[0]
        elif shape[0] != batch:
            raise bad(f"input {name!r}: batch size {shape[0]} differs from {batch}")
        kind = "boolean" if info.dtype == "bool" else info.kind
        _require(name, datatype, declared_datatype(info), f"{kind} feature {name!r}")
        column = _array(name, shape, datatype, data).reshape(-1)
        columns.append(
            column.astype(np.float64, copy=False)
            if info.kind == "numeric"
            else _column(column, info, name)
        )
    if signature.numeric_only:
        return np.column_stack(columns)
    matrix = np.empty((batch or 0, len(columns)), dtype=object)
    for j, column in enumerate(columns):
        matrix[:, j] = column
    return matrix


def _as_float(array: np.ndarray, name: str) -> np.ndarray:
    try:
        result = array.astype(np.float64)
    except (TypeError, ValueError):
        raise bad(f"input {name!r}: numeric features need numbers") from None
    if not np.isfinite(result).all():
        raise bad(f"input {name!r}: NaN and infinity are not accepted")
    return result


def _column(values: np.ndarray, info: FeatureInfo, name: str) -> np.ndarray:
    """One feature's values as the pipeline was trained on them: floats for numeric features,
    Python str (or bool) objects for categorical ones."""
    if info.kind == "numeric":
        return _as_float(values, name).astype(object)
    if info.dtype == "bool":
        if values.dtype.kind == "b":
            return values.astype(object)
        lowered = [v.lower() if isinstance(v, str) else v for v in values.tolist()]
        if any(v not in ("true", "false", True, False) for v in lowered):
            raise bad(f"input {name!r}: boolean feature {info.name!r} needs true/false")
        return np.asarray([v in ("true", True) for v in lowered], dtype=object)
    if values.dtype != object or not all(isinstance(v, str) for v in values.tolist()):
        raise bad(f"input {name!r}: categorical feature {info.name!r} needs strings")
    return values


def encode_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    results: dict[str, np.ndarray],
) -> bytes:
    outputs = []
    for name, values in results.items():
        outputs.append(
            {
                "name": name,
                "shape": list(values.shape),
                "datatype": datatype_of(values),
                "data": values.ravel() if values.dtype.kind in "biuf" else values.ravel().tolist(),
            }
        )
    response: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = outputs
    return orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)


def datatype_of(values: np.ndarray) -> str:
    kind, size = values.dtype.kind, values.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind == "i":
        return f"INT{size * 8}"
    if kind == "u":
        return f"UINT{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
