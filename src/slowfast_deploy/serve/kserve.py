"""The Open Inference Protocol (KServe v2 REST), with the binary tensor data extension.

Pure functions from request bytes to tensors and from tensors to response bytes; ``app``
routes them. What ``tritonclient.http`` sends by default: a JSON header of
``Inference-Header-Content-Length`` bytes, then each input's raw little-endian bytes
(``parameters.binary_data_size``), and ``parameters.binary_data_output: true`` so that the
outputs come back the same way.

Spec: https://github.com/kserve/open-inference-protocol (REST, binary tensor data
extension).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy.serve.problems import Problem

HEADER_LENGTH = "inference-header-content-length"
PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "openvino": "openvino", "torch": "pytorch_libtorch"}
DTYPE = "FP32"
# KServe datatype -> numpy (little-endian); the model's input is FP32 or, for a model exported
# with --input-dtype uint8, UINT8
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}
KSERVE_DTYPES = {"float32": "FP32", "uint8": "UINT8"}
# a JSON object of a v2 request (its header, an input tensor), as ``json.loads`` gives it
V2Object: TypeAlias = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]  # -1: any size (the batch axis, dynamic H/W)
    datatype: str = DTYPE

    def meta(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    def accepts(self, shape: tuple[int, ...]) -> bool:
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )


@dataclass(frozen=True, slots=True)
class InferRequest:
    id: str | None
    tensor: NDArray[np.float32] | NDArray[np.uint8]
    binary_output: bool
    outputs: list[str]  # requested outputs (empty: all)


def _json(data: bytes) -> V2Object:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise Problem("bad_request", f"the inference request is not valid JSON ({err})") from err
    if not isinstance(value, dict):
        raise Problem("bad_request", "the inference request must be a JSON object")
    return value


def _split(body: bytes, header_length: str | None) -> tuple[V2Object, memoryview]:
    """The JSON header and the binary data after it (none without a header length)."""
    if header_length is None:
        return _json(body), memoryview(b"")
    if not header_length.isdigit() or int(header_length) > len(body):
        raise Problem(
            "bad_request",
            f"Inference-Header-Content-Length {header_length!r} does not fit a body of "
            f"{len(body)} bytes",
        )
    split = int(header_length)
    return _json(body[:split]), memoryview(body)[split:]


def _the_input(request: V2Object, expected: TensorSpec) -> tuple[V2Object, list[int]]:
    """The request's one input tensor and its shape, checked: name, datatype, shape."""
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise Problem(
            "wrong_input",
            f"the model takes exactly one input, {expected.name!r} {expected.datatype} "
            f"{list(expected.shape)}",
        )
    tensor = inputs[0]
    name, datatype, shape = tensor.get("name"), tensor.get("datatype"), tensor.get("shape")
    if name != expected.name:
        raise Problem(
            "wrong_input",
            f"unknown input {name!r}: the model's input is {expected.name!r} "
            f"{expected.datatype} {list(expected.shape)}",
        )
    if datatype != expected.datatype:
        raise Problem(
            "wrong_datatype",
            f"input {name!r} is {datatype}, expected {expected.datatype} {list(expected.shape)}",
        )
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise Problem(
            "wrong_shape", f"input {name!r}: shape must be a list of sizes, got {shape!r}"
        )
    if not expected.accepts(tuple(shape)) or (shape and shape[0] == 0):
        raise Problem(
            "wrong_shape",
            f"input {name!r} has shape {shape}, expected {list(expected.shape)} (-1: any size)",
        )
    return tensor, shape


def _values(
    tensor: V2Object, shape: list[int], dtype: np.dtype[Any], binary: memoryview
) -> NDArray[Any]:
    """The tensor's values: its binary data, or its JSON ``data``, filling ``shape``."""
    name, count = tensor["name"], math.prod(shape)
    params = tensor.get("parameters") or {}
    if "binary_data_size" in params:
        size = params["binary_data_size"]
        needed = count * dtype.itemsize
        if not isinstance(size, int) or size != len(binary) or size != needed:
            raise Problem(
                "bad_tensor",
                f"input {name!r}: binary_data_size {size!r} with {len(binary)} bytes after the "
                f"header; shape {shape} {tensor['datatype']} needs {needed}",
            )
        return np.frombuffer(binary, dtype=dtype).reshape(shape)
    if "data" not in tensor:
        raise Problem("bad_tensor", f"input {name!r} has neither data nor binary data")
    try:
        array = np.asarray(tensor["data"], dtype=dtype).reshape(-1)
    except (TypeError, ValueError, OverflowError) as err:
        raise Problem("bad_tensor", f"input {name!r}: data is not numbers ({err})") from err
    if array.size != count:
        raise Problem(
            "bad_tensor", f"input {name!r}: {array.size} values for shape {shape} ({count} needed)"
        )
    return array.reshape(shape)


def _outputs(request: V2Object) -> tuple[list[str], bool]:
    """The outputs asked for (empty: all) and whether they are wanted as binary data."""
    params = request.get("parameters") or {}
    outputs = request.get("outputs") or []
    if not isinstance(outputs, list):
        raise Problem("bad_request", "'outputs' must be a list")
    binary_out = bool(params.get("binary_data_output", False))
    names = []
    for out in outputs:
        if not isinstance(out, dict) or "name" not in out:
            raise Problem("bad_request", "each requested output needs a 'name'")
        names.append(out["name"])
        binary_out = binary_out or bool((out.get("parameters") or {}).get("binary_data", False))
    return names, binary_out


def parse_infer(body: bytes, header_length: str | None, expected: TensorSpec) -> InferRequest:
    """The one input tensor of a v2 inference request (JSON or binary), checked against
    ``expected``: its name, datatype and shape (400 naming the expected one)."""
    request, binary = _split(body, header_length)
    tensor, shape = _the_input(request, expected)
    dtype = NUMPY_DTYPES[expected.datatype]
    array = _values(tensor, shape, dtype, binary)
    names, binary_out = _outputs(request)
    request_id = request.get("id")
    return InferRequest(
        str(request_id) if request_id is not None else None,
        np.ascontiguousarray(array, dtype=dtype.newbyteorder("=")),
        binary_out,
        names,
    )


def infer_response(
    model: str, request: InferRequest, output: TensorSpec, values: NDArray[np.float32]
) -> tuple[bytes, dict[str, str]]:
    """The response body and headers: JSON, or JSON + binary data when asked."""
    if request.outputs and request.outputs != [output.name]:
        unknown = [n for n in request.outputs if n != output.name]
        raise Problem(
            "bad_request", f"unknown output(s) {unknown}: the model's output is {output.name!r}"
        )
    tensor: dict[str, Any] = {
        "name": output.name,
        "datatype": output.datatype,
        "shape": list(values.shape),
    }
    head: dict[str, Any] = {"model_name": model, "model_version": "1", "outputs": [tensor]}
    if request.id is not None:
        head["id"] = request.id
    if not request.binary_output:
        tensor["data"] = values.reshape(-1).tolist()
        return json.dumps(head).encode(), {"content-type": "application/json"}
    raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    header = json.dumps(head).encode()
    return header + raw, {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(header)),
    }


def model_metadata(
    name: str, platform: str, inputs: TensorSpec, outputs: TensorSpec
) -> dict[str, Any]:
    return {
        "name": name,
        "versions": ["1"],
        "platform": PLATFORMS.get(platform, platform),
        "inputs": [inputs.meta()],
        "outputs": [outputs.meta()],
    }


def model_config(
    name: str, platform: str, inputs: TensorSpec, outputs: TensorSpec, *, max_batch: int
) -> dict[str, Any]:
    """Triton's model configuration (``/v2/models/{name}/config``, what ``tritonclient``'s
    ``get_model_config`` and ``perf_analyzer`` read): dims without the batch axis."""

    def tensor(spec: TensorSpec) -> dict[str, Any]:
        return {
            "name": spec.name,
            "data_type": f"TYPE_{spec.datatype}",
            "dims": list(spec.shape[1:]),
        }

    return {
        "name": name,
        "platform": PLATFORMS.get(platform, platform),
        "max_batch_size": max_batch,
        "input": [tensor(inputs)],
        "output": [tensor(outputs)],
        "dynamic_batching": {},
    }
