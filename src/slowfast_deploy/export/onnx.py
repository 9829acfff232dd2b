"""Export an mmaction2 SlowFast checkpoint to ONNX with the reference workflow's contract.

``video [N, 1, 3, 32, 224, 224]`` (N dynamic) -> ``class [N, 400]`` (softmax with
``softmax=True``, as the guide's ``--softmax``). The slow pathway's temporal subsampling is a
strided ``Slice``, not a 5-D ``Resize``. Metadata (spec, preprocessing, output kind, checkpoint
sha256, versions) is stored in ``metadata_props``. Every export is validated against PyTorch.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from slowfast_deploy._files import sha256_file
from slowfast_deploy._optional import package_version, require
from slowfast_deploy.errors import ParityError
from slowfast_deploy.export.simplify import simplify_onnx
from slowfast_deploy.export.validate import ParityReport, compare_outputs
from slowfast_deploy.runtime.base import (
    INPUT_DTYPES,
    PARITY_ATOL,
    InputDType,
    ModelInput,
    OutputKind,
    model_input,
    to_probs,
)
from slowfast_deploy.specs import SINGLE_VIEW, SLOWFAST_R50_8X8, ModelSpec
from slowfast_deploy.video.preprocess import crop_clips
from slowfast_deploy.video.samples import sample_frames

if TYPE_CHECKING:  # for annotations only: the model (torch) loads when used
    from slowfast_deploy.model.slowfast import ReferenceContract

logger = logging.getLogger(__name__)

INPUT_NAME = "video"
OUTPUT_NAME = "class"
DEFAULT_OPSET = 17


@dataclass(frozen=True, slots=True)
class ExportResult:
    path: Path
    parity: ParityReport
    simplified_with: str | None


def sample_input(batch: int = 1, input_dtype: InputDType = "float32") -> ModelInput:
    """Real model input: generated moving-pattern clips through the test pipeline, as
    ``model_input`` makes it for ``input_dtype`` (``[batch, 1, 3, 32, 224, 224]``)."""

    clips = [
        model_input(
            crop_clips(sample_frames(32, seed=b), 1, SINGLE_VIEW.preprocess),
            SINGLE_VIEW.preprocess,
            input_dtype,
        )
        for b in range(batch)
    ]
    return np.stack(clips)


def export_onnx(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    softmax: bool = True,
    opset: int = DEFAULT_OPSET,
    simplify: bool = False,
    dynamic_hw: bool = False,
    spec: ModelSpec = SLOWFAST_R50_8X8,
    input_dtype: InputDType = "float32",
) -> ExportResult:
    """Export, optionally simplify, then validate against PyTorch on real input (batch 1 and 2).

    ``input_dtype="uint8"`` puts the mean/std normalisation inside the graph: the input is
    ``video`` uint8 RGB crops 0-255, validated against the float model on the same clips.
    """
    torch = require("torch", extra="torch", purpose="ONNX export")
    onnx = require("onnx", extra="onnx", purpose="ONNX export")
    from slowfast_deploy.model.checkpoint import load_checkpoint
    from slowfast_deploy.model.slowfast import ReferenceContract

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    net = load_checkpoint(checkpoint, spec)
    normalize = SINGLE_VIEW.preprocess if input_dtype == "uint8" else None
    model = ReferenceContract(net, softmax=softmax, normalize=normalize).eval()
    example = torch.from_numpy(sample_input(1, input_dtype))
    axes = {0: "N", 4: "H", 5: "W"} if dynamic_hw else {0: "N"}
    with warnings.catch_warnings():  # the TorchScript exporter warns that it is legacy
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (example,),
            str(output),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: axes, OUTPUT_NAME: {0: "N"}},
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter: no onnxscript dependency, stable Slice export
        )
    simplified_with = None
    if simplify:
        simplified_with = simplify_onnx(output, output)
    proto = onnx.load(str(output))
    metadata = {
        "slowfast_deploy_version": package_version(),
        "model_spec": json.dumps(spec.to_dict()),
        "view_spec": json.dumps(asdict(SINGLE_VIEW)),
        "output_kind": "probs" if softmax else "logits",
        "input_dtype": input_dtype,
        "checkpoint_sha256": sha256_file(checkpoint),
        "checkpoint_name": Path(checkpoint).name,
        "opset": str(opset),
        "simplified_with": simplified_with or "",
        "torch_version": torch.__version__,
    }
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(output))
    float_model = ReferenceContract(net, softmax=softmax).eval()  # the reference: float input
    parity = validate_onnx(float_model, output, softmax=softmax, input_dtype=input_dtype)
    return ExportResult(output, parity, simplified_with)


def validate_onnx(
    model: ReferenceContract, path: Path, *, softmax: bool, input_dtype: InputDType = "float32"
) -> ParityReport:
    """Run the file with ONNX Runtime and PyTorch on real input; raise ``ParityError`` if off.

    ``model`` takes float input; a uint8 file gets the same clips' crops, so its scores are
    held to the float model's within the fp32 tolerance.
    """
    torch = require("torch", extra="torch", purpose="export validation")
    ort = require("onnxruntime", extra="onnx", purpose="export validation")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    inputs = [i.name for i in session.get_inputs()]
    if inputs != [INPUT_NAME] or names != [OUTPUT_NAME]:
        raise ParityError(f"{path}: I/O names {inputs} -> {names}, expected ['video'] -> ['class']")
    video = sample_input(2)
    with torch.inference_mode():
        expected = model(torch.from_numpy(video)).numpy()
    got = session.run(None, {INPUT_NAME: sample_input(2, input_dtype)})[0]
    kind: OutputKind = "probs" if softmax else "logits"  # compared as softmax scores either way
    return compare_outputs(
        {OUTPUT_NAME: to_probs(expected, kind)},
        {OUTPUT_NAME: to_probs(got, kind)},
        atol=PARITY_ATOL[("onnxruntime", "fp32")],
        source=str(path),
    )
