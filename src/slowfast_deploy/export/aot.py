"""``compile CHECKPOINT --backend torch``: an mmaction2 checkpoint -> an AOTInductor ``.pt2``.

``torch.export`` traces the reference contract (``video [N, 1, 3, 32, 224, 224]`` ->
``class [N, classes]``) with a dynamic batch ``N``; ``torch._inductor.aoti_compile_and_package``
turns it into a package of machine code for this torch version, device and CPU instruction
set, with Inductor's freezing (weights as constants: oneDNN convolutions with pre-packed
weights and fused bias/ReLU/residual-add). ``precision="bf16"`` runs the backbone in
bfloat16 (BatchNorm folded first; normalisation, head and softmax in float32);
``input_dtype="uint8"`` puts the mean/std normalisation in the graph. The package carries
``runtime.aot_backend.PT2_METADATA`` and is checked against the eager fp32 model before it is
kept: fp32 within ``PARITY_ATOL``, reduced precision reported (max |diff|, top-1).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from slowfast_deploy._files import sha256_file
from slowfast_deploy._optional import package_version, require
from slowfast_deploy.export.onnx import sample_input
from slowfast_deploy.export.validate import OutputCheck, ParityReport, compare_outputs
from slowfast_deploy.runtime.aot_backend import AotBackend, cpu_isa, write_pt2_metadata
from slowfast_deploy.runtime.base import INPUT_DTYPES, PARITY_ATOL, InputDType, to_probs
from slowfast_deploy.runtime.torch_backend import (
    check_torch_device,
    check_torch_precision,
    torch_dtype,
)
from slowfast_deploy.specs import SINGLE_VIEW, SLOWFAST_R50_8X8, ModelSpec

if TYPE_CHECKING:  # for annotations only: the model (torch) loads when used
    from slowfast_deploy.model.slowfast import ReferenceContract

logger = logging.getLogger(__name__)

MAX_BATCH = 1024  # the dynamic batch's upper bound in the exported graph
# dynamic H/W bounds: below 64 pixels the 32x-downsampled feature map would be 1x1, a case
# torch.export specialises on; 1024 is far above any crop the test pipelines make
MIN_SIDE, MAX_SIDE = 64, 1024


@dataclass(frozen=True, slots=True)
class AotResult:
    path: Path
    precision: str
    device: str
    input_dtype: InputDType
    parity: ParityReport
    top1_agree: bool
    compile_s: float


def compile_torch(
    checkpoint: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    precision: str = "fp32",
    device: str = "cpu",
    softmax: bool = True,
    input_dtype: InputDType = "float32",
    spec: ModelSpec = SLOWFAST_R50_8X8,
    threads: int | None = None,
    dynamic_hw: bool = False,
) -> AotResult:
    """Export and AOT-compile ``checkpoint`` to ``output`` (``.pt2`` added if missing).

    ``dynamic_hw`` also makes H and W dynamic (``MIN_SIDE`` to ``MAX_SIDE`` pixels), for
    ``--views 30``'s 256x256 crops; the default fixes them at 224 (the reference contract).
    """
    torch = require("torch", extra="torch", purpose="compile --backend torch")
    from torch._inductor import aoti_compile_and_package
    from torch._inductor import config as inductor_config

    from slowfast_deploy.model.checkpoint import load_checkpoint
    from slowfast_deploy.model.slowfast import ReferenceContract

    if input_dtype not in INPUT_DTYPES:
        raise ValueError(f"input_dtype must be one of {INPUT_DTYPES}, got {input_dtype!r}")
    check_torch_device(torch, device)
    check_torch_precision(torch, device, precision)
    if threads:
        torch.set_num_threads(threads)
    output = Path(output)
    if output.suffix.lower() != ".pt2":
        output = output.with_name(output.name + ".pt2")
    output.parent.mkdir(parents=True, exist_ok=True)
    normalize = SINGLE_VIEW.preprocess if input_dtype == "uint8" else None
    model = (
        ReferenceContract(
            load_checkpoint(checkpoint, spec),
            softmax=softmax,
            normalize=normalize,
            dtype=torch_dtype(torch, precision),
        )
        .eval()
        .to(device)
    )
    example = torch.from_numpy(sample_input(2, input_dtype)).to(device)
    axes = {0: torch.export.Dim("N", min=1, max=MAX_BATCH)}
    if dynamic_hw:
        axes[4] = torch.export.Dim("H", min=MIN_SIDE, max=MAX_SIDE)
        axes[5] = torch.export.Dim("W", min=MIN_SIDE, max=MAX_SIDE)
    t0 = time.perf_counter()
    with torch.no_grad():
        program = torch.export.export(model, (example,), dynamic_shapes={"video": axes})
    # written beside the target, then renamed: an interrupted compile leaves no .pt2
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        staged = Path(tmp) / output.name
        # freezing: weights become constants, so convolutions are lowered to oneDNN with
        # pre-packed weights and fused post-ops (bias, ReLU, the residual add) instead of
        # ATen's convolution followed by separate kernels; set globally as well, since the
        # lowering reads the global config; it only applies with gradients off
        with inductor_config.patch(freezing=True), torch.no_grad():
            aoti_compile_and_package(
                program, package_path=str(staged), inductor_configs={"freezing": True}
            )
        compile_s = time.perf_counter() - t0
        side = None if dynamic_hw else SINGLE_VIEW.preprocess.crop_size
        shape = [None, 1, 3, spec.clip_len, side, side]
        write_pt2_metadata(
            staged,
            {
                "slowfast_deploy_version": package_version(),
                "torch_version": torch.__version__,
                "device": device,
                "cpu_isa": cpu_isa(torch) if device == "cpu" else "",
                "precision": precision,
                "input_name": "video",
                "input_dtype": input_dtype,
                "input_shape": shape,
                "output_kind": "probs" if softmax else "logits",
                "softmax": softmax,
                "model_spec": spec.to_dict(),
                "view_spec": asdict(SINGLE_VIEW),
                "checkpoint_sha256": sha256_file(checkpoint),
                "checkpoint_name": Path(checkpoint).name,
            },
        )
        logger.info("AOTInductor compile of %s took %.0f s", output, compile_s)
        # checked before it is kept: a package off beyond tolerance never replaces ``output``
        reference = ReferenceContract(load_checkpoint(checkpoint, spec), softmax=softmax).eval()
        compiled = AotBackend(str(staged), device=device)
        parity, agree = check_pt2(reference, compiled, precision, source=str(output))
        os.replace(staged, output)
    return AotResult(output, precision, device, input_dtype, parity, agree, compile_s)


def check_pt2(
    reference: ReferenceContract, compiled: AotBackend, precision: str, *, source: str
) -> tuple[ParityReport, bool]:
    """``compiled`` (a ``.pt2`` backend; ``source`` names it) against the eager fp32
    float-input ``reference``.

    fp32 must agree within ``PARITY_ATOL`` (else ``ParityError``); bf16/fp16 are reported.
    """
    torch = require("torch", extra="torch", purpose="compile --backend torch")
    video = sample_input(2)
    with torch.inference_mode():
        raw = reference(torch.from_numpy(video)).numpy()
    kind = compiled.output_kind
    expected = to_probs(raw, kind)
    got = to_probs(
        compiled.run(sample_input(2, compiled.input_dtype)),
        kind,
    )
    agree = bool((expected.argmax(-1) == got.argmax(-1)).all())
    atol = PARITY_ATOL.get(("torch", precision))
    path = source
    if atol is None:
        diff = float(np.abs(expected - got).max())
        report = ParityReport(
            [OutputCheck("class", expected.shape, got.shape, diff, float("inf"), agree)]
        )
    else:
        report = compare_outputs({"class": expected}, {"class": got}, atol=atol, source=path)
    logger.info(
        "compiled %s: max |diff| %.3g vs eager fp32, top-1 %s",
        path,
        report.max_abs_diff,
        "agrees" if agree else "differs",
    )
    return report, agree
