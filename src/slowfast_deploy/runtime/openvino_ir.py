"""Pieces shared by ``compile`` and ``quantize``: read an exported ONNX file, convert it to an
``openvino.Model``, and save an IR with the toolkit's ``rt_info`` section.

Both modules import this one and neither imports the other's internals, so there is no cycle.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from slowfast_deploy._optional import require
from slowfast_deploy.errors import ModelFormatError

RT_SECTION = "slowfast_deploy"  # rt_info section of every IR this toolkit writes


def load_onnx(onnx_path: Path) -> Any:
    onnx = require("onnx", extra="onnx", purpose="compile")
    if onnx_path.suffix.lower() != ".onnx" or not onnx_path.is_file():
        raise ModelFormatError(f"{onnx_path}: compile takes an exported .onnx file")
    try:
        return onnx.load(str(onnx_path))
    except Exception as err:  # onnx raises DecodeError and friends
        raise ModelFormatError(f"{onnx_path}: not a readable ONNX file ({err})") from err


def onnx_metadata(proto: Any) -> dict[str, str]:
    return {p.key: p.value for p in proto.metadata_props}


def to_openvino(proto: Any) -> Any:
    """An ``openvino.Model`` of an ONNX ``ModelProto`` (through a temporary file)."""
    ov = require("openvino", extra="openvino", purpose="compile --backend openvino")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        require("onnx", extra="onnx", purpose="compile").save(proto, str(src))
        return ov.convert_model(str(src))


def save_ir(model: Any, output: Path, metadata: dict[str, str]) -> Path:
    """Save ``model`` as ``output.xml`` + ``.bin`` (no fp16 compression) with ``metadata`` in
    ``rt_info`` section ``slowfast_deploy``; returns the ``.xml`` path."""
    ov = require("openvino", extra="openvino", purpose="compile --backend openvino")
    for key, value in metadata.items():
        model.set_rt_info(value, [RT_SECTION, key])
    xml = output.with_suffix(".xml")
    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return xml
