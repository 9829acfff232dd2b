"""Graph simplification with onnxslim (pure Python wheel; onnx-simplifier needs a compiled one)."""

from __future__ import annotations

import os

from slowfast_deploy._optional import require


def simplify_onnx(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> str:
    """Simplify ``src`` into ``dst`` (may be the same path); returns the tool and its version."""
    onnxslim = require("onnxslim", extra="onnx", purpose="--simplify")
    onnx = require("onnx", extra="onnx", purpose="--simplify")
    model = onnxslim.slim(onnx.load(str(src)))
    onnx.save(model, str(dst))
    return f"onnxslim {onnxslim.__version__}"
