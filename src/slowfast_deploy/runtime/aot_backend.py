"""AOTInductor packages (``.pt2``, made by ``compile CHECKPOINT --backend torch``).

A ``.pt2`` holds machine code for one torch version, one device and one CPU instruction set,
plus ``extra/slowfast_deploy.json`` (``PT2_METADATA``): torch version, device, instruction
set, precision, input contract (dtype, shape), output kind. ``read_pt2_metadata`` reads it
from the zip without loading the code, so a package built for another torch, device or CPU is
refused in one line instead of crashing in the loader.
"""

from __future__ import annotations

import json
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from slowfast_deploy._optional import require
from slowfast_deploy.errors import BackendUnavailableError, ModelFormatError
from slowfast_deploy.runtime.base import BackendInfo, InputDType, ModelInput, OutputKind
from slowfast_deploy.runtime.torch_backend import check_torch_device, check_torch_precision

logger = logging.getLogger(__name__)

PT2_METADATA = "extra/slowfast_deploy.json"  # inside the package's top folder
REBUILD = "recompile it here with `slowfast-deploy compile CHECKPOINT --backend torch`"


class Pt2Metadata(TypedDict):
    """``extra/slowfast_deploy.json`` of a ``.pt2`` (written by ``export.aot``)."""

    slowfast_deploy_version: str
    torch_version: str
    device: str
    cpu_isa: str  # "" for a GPU package
    precision: str
    input_name: str
    input_dtype: InputDType
    input_shape: list[int | None]
    output_kind: OutputKind
    softmax: bool
    model_spec: Mapping[str, object]  # ModelSpec.to_dict()
    view_spec: Mapping[str, object]  # asdict(ViewSpec)
    checkpoint_sha256: str
    checkpoint_name: str


def read_pt2_metadata(path: str | os.PathLike[str]) -> Pt2Metadata:
    """The ``slowfast_deploy.json`` of a ``.pt2``; ``ModelFormatError`` if it has none."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if n.endswith("/" + PT2_METADATA)]
            if not names:
                raise ModelFormatError(
                    f"{path}: a .pt2 without slowfast-deploy metadata; make it with "
                    "`slowfast-deploy compile CHECKPOINT --backend torch --output M.pt2`"
                )
            meta: Pt2Metadata = json.loads(archive.read(names[0]))
            return meta
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ModelFormatError(f"{path}: not a .pt2 package ({err})") from err


def write_pt2_metadata(path: str | os.PathLike[str], meta: Pt2Metadata) -> None:
    """Add ``meta`` to the package at ``path`` (once, after AOTInductor wrote it)."""
    with zipfile.ZipFile(path, "a") as archive:
        top = archive.namelist()[0].split("/", 1)[0]
        archive.writestr(f"{top}/{PT2_METADATA}", json.dumps(meta, indent=1))


def cpu_isa(torch: Any) -> str:
    """The vector instruction set Inductor generates CPU code for here (e.g. ``avx512``)."""
    from torch._inductor.cpu_vec_isa import pick_vec_isa

    return str(pick_vec_isa()) or "none"


def check_pt2_runs_here(meta: Pt2Metadata, path: str, torch: Any, device: str) -> None:
    """Raise ``BackendUnavailableError`` in one line unless this torch/device/CPU can run it."""
    built = f"torch {meta.get('torch_version')} on {meta.get('device')}"
    if meta.get("torch_version") != torch.__version__:
        raise BackendUnavailableError(
            f"{path} was built for {built}; it needs torch {meta.get('torch_version')} "
            f"(this is {torch.__version__}): {REBUILD}"
        )
    if meta.get("device") != device:
        raise BackendUnavailableError(
            f"{path} was built for {built}; run it with --device {meta.get('device')} or "
            f"{REBUILD} --device {device}"
        )
    if device == "cpu":
        from torch._inductor.cpu_vec_isa import valid_vec_isa_list

        here = [str(isa) for isa in valid_vec_isa_list()]
        if meta.get("cpu_isa") not in (*here, "none"):
            raise BackendUnavailableError(
                f"{path} was built for {meta.get('cpu_isa')} CPUs and this CPU has "
                f"{', '.join(here) or 'no vector ISA Inductor uses'}: {REBUILD}"
            )


class AotBackend:
    """Runs a ``.pt2`` with ``torch._inductor.aoti_load_package``; numpy at the boundary."""

    def __init__(
        self,
        model_path: str,
        *,
        precision: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        torch = require("torch", extra="torch", purpose="running a .pt2 package")
        meta = read_pt2_metadata(model_path)
        check_torch_device(torch, device)
        check_pt2_runs_here(meta, model_path, torch, device)
        stored = str(meta["precision"])
        if precision not in (None, stored):
            raise BackendUnavailableError(
                f"{model_path} is a {stored} package (precision is fixed when compiling); "
                f"recompile with `compile CHECKPOINT --backend torch --precision {precision}`"
            )
        check_torch_precision(torch, device, stored)
        if threads:
            torch.set_num_threads(threads)
        from torch._inductor import aoti_load_package

        try:
            self._model: Any = aoti_load_package(str(model_path))
        except Exception as err:  # the loader raises RuntimeError for any bad package
            raise ModelFormatError(
                f"{model_path}: AOTInductor cannot load it ({str(err).strip().splitlines()[0]})"
            ) from err
        self._torch = torch
        self._device = device
        self.input_shape: tuple[int | None, ...] = tuple(meta["input_shape"])
        self.input_dtype: InputDType = meta["input_dtype"]
        self.output_kind: OutputKind = meta["output_kind"]
        threads_used = torch.get_num_threads()
        self.info = BackendInfo(
            name="torch",
            model_path=str(model_path),
            precision=stored,
            device=device,
            provider=f"torch {torch.__version__} AOTInductor {meta.get('cpu_isa', device)}, "
            f"{threads_used} threads",
            versions={"torch": torch.__version__},
        )
        logger.info(
            "AOTInductor %s on %s, %s, %d threads",
            Path(model_path).name,
            device,
            stored,
            threads_used,
        )

    def run(self, video: ModelInput) -> NDArray[np.float32]:
        torch = self._torch
        tensor = torch.from_numpy(np.ascontiguousarray(video))
        with torch.inference_mode():
            out = self._model(tensor.to(self._device))
        result: NDArray[np.float32] = out.to("cpu").numpy()
        return result

    def close(self) -> None:
        self._model = None
