"""The reference workflow's offline route: videos -> ``.bin`` files -> result files.

(Their accuracy: ``evaluation.result_dir.evaluate_results``.)

``preprocess_dataset`` and ``infer_bins`` are generators (one item per video / batch) so the
caller owns progress display; they write every file atomically and skip work already done.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from slowfast_deploy._files import write_atomic
from slowfast_deploy.engine import open_engine
from slowfast_deploy.engine.base import DecodeOptions, EngineOptions, VideoJob
from slowfast_deploy.engine.decode import decoder_reusable
from slowfast_deploy.engine.jobs import Annotation
from slowfast_deploy.reference.formats import (
    BIN_FORMAT_NAME,
    BIN_SHAPE,
    bin_bytes,
    bin_dtype,
    format_info,
    read_bin,
    result_bytes,
    result_name,
)
from slowfast_deploy.runtime.base import (
    Backend,
    InputDType,
    input_dtype_of,
    model_input,
    run_batched,
)
from slowfast_deploy.specs import SINGLE_VIEW

INFO_NAME = "kinetics400.info"
FAILED_NAME = "failed.txt"
SOURCES_NAME = "bin_sources.jsonl"  # which video (and decoder) each .bin was made from


@dataclass(frozen=True, slots=True)
class PreprocessOutcome:
    item: Annotation
    error: str | None  # None: the .bin exists (written now or by an earlier run)
    skipped: bool = False


def _read_sources(path: Path) -> dict[int, tuple[str, str, str, str]]:
    """``index -> (video path, decoder used, --decoder asked, dtype)`` of the ``.bin`` files
    an earlier run completed (records without a dtype are float32, the default)."""
    sources: dict[int, tuple[str, str, str, str]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                used = str(entry["decoder"])
                asked = str(entry.get("requested", used))
                dtype = str(entry.get("dtype", "float32"))
                sources[int(entry["index"])] = (str(entry["path"]), used, asked, dtype)
            except (ValueError, KeyError, TypeError):
                continue  # a line half-written by a kill: its .bin is redone
    return sources


def _ends_mid_line(path: Path) -> bool:
    if not path.is_file() or not path.stat().st_size:
        return False
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def preprocess_dataset(
    items: list[Annotation],
    *,
    video_dir: Path,
    save_dir: Path,
    decode: DecodeOptions | None = None,
    engine: EngineOptions | None = None,
    dtype: InputDType = "float32",
) -> Iterator[PreprocessOutcome]:
    """Write ``save_dir/bin/{i}.bin`` for every item, decoding with the engine's decoders.

    ``dtype="uint8"`` writes the crops' bytes (for uint8-input models, 4x smaller) and records
    it in each ``bin_sources.jsonl`` line and in ``bin_format.json``; the float32 default
    writes exactly the reference's files (and removes a ``bin_format.json`` left by a uint8 run).

    Yields one outcome per item (those already done first). A video that is missing or cannot
    be decoded is yielded with its error and gets no ``.bin``; the caller then calls
    ``write_info``. A ``.bin`` from an earlier run is kept only if ``bin_sources.jsonl`` says
    it was made from the same video with the same decoder.
    """
    decode = decode or DecodeOptions()
    decoder = decode.decoder
    bin_size = int(np.prod(BIN_SHAPE)) * bin_dtype(dtype).itemsize
    bin_dir = save_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    format_path = save_dir / BIN_FORMAT_NAME
    if dtype == "float32":
        format_path.unlink(missing_ok=True)
    else:
        write_atomic(format_path, json.dumps({"dtype": dtype, "shape": BIN_SHAPE}).encode())
    for stale in bin_dir.glob(".*.tmp"):  # left by a run killed mid-write
        stale.unlink()
    sources_path = save_dir / SOURCES_NAME
    sources = _read_sources(sources_path)
    todo = []
    for item in items:
        target = bin_dir / f"{item.index}.bin"
        if (
            item.index in sources
            and sources[item.index][0] == item.path
            and decoder_reusable(sources[item.index][1], decoder, sources[item.index][2])
            and sources[item.index][3] == dtype
            and target.is_file()
            and target.stat().st_size == bin_size
        ):
            yield PreprocessOutcome(item, None, skipped=True)
        else:
            todo.append(item)
    by_key = {str(item.index): item for item in todo}
    jobs = [VideoJob(str(item.index), str(video_dir / item.path), item.label) for item in todo]
    decoders = open_engine(None, SINGLE_VIEW, decode, engine or EngineOptions())
    with open(sources_path, "a", encoding="utf-8") as log, contextlib.closing(decoders):
        if _ends_mid_line(sources_path):
            log.write("\n")  # after a line cut short by a kill, start a fresh one
        for result in decoders.decode(jobs) if jobs else ():
            item = by_key[result.job.key]
            if result.crops is None:
                stale = bin_dir / f"{item.index}.bin"  # from another video or decoder
                stale.unlink(missing_ok=True)
                yield PreprocessOutcome(item, f"{result.error} (line {item.line})")
                continue
            views = model_input(result.crops, SINGLE_VIEW.preprocess, dtype)
            write_atomic(bin_dir / f"{item.index}.bin", bin_bytes(views[None]))
            log.write(
                json.dumps(
                    {
                        "index": item.index,
                        "path": item.path,
                        "decoder": result.info.get("decoder", decoder),  # the decoder used
                        "requested": decoder,
                        "dtype": dtype,
                    }
                )
                + "\n"
            )
            log.flush()
            os.fsync(log.fileno())
            yield PreprocessOutcome(item, None)


def write_info(save_dir: Path, outcomes: list[PreprocessOutcome]) -> None:
    """``kinetics400.info`` for the videos that have a ``.bin``; ``failed.txt`` for the rest."""
    outcomes = sorted(outcomes, key=lambda o: o.item.index)
    done = [(o.item.index, o.item.label) for o in outcomes if o.error is None]
    write_atomic(save_dir / INFO_NAME, format_info(done).encode())
    failed = [f"{o.item.index} {o.item.path}\t{o.error}\n" for o in outcomes if o.error]
    failed_path = save_dir / FAILED_NAME
    if failed:
        write_atomic(failed_path, "".join(failed).encode())
    elif failed_path.exists():
        failed_path.unlink()


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    stems: list[str]
    compute_ms: float


def pending_bins(bins: list[Path], out_dir: Path, outfmt: str) -> list[Path]:
    """``bins`` whose result file is not in ``out_dir`` yet (``infer --resume``)."""
    return [p for p in bins if not (out_dir / result_name(p.stem, outfmt)).is_file()]


def infer_bins(
    backend: Backend,
    bins: list[Path],
    *,
    out_dir: Path,
    outfmt: str = "TXT",
    batchsize: int = 1,
    input_shape: tuple[int, ...] = BIN_SHAPE,
) -> Iterator[BatchOutcome]:
    """Run ``batchsize`` ``.bin`` files per call; write ``out_dir/{stem}_0.{fmt}`` per input.

    The ``.bin`` files hold what the model takes (``backend.input_dtype``: float32 clips, or
    uint8 crops from ``preprocess --dtype uint8``). Every file's size is checked against it
    before anything runs, so a bad file stops the run before any output is written.
    """
    if batchsize < 1:
        raise ValueError(f"batchsize must be >= 1, got {batchsize}")
    dtype = input_dtype_of(backend)
    expected = int(np.prod(input_shape)) * bin_dtype(dtype).itemsize
    for path in bins:
        if path.stat().st_size != expected:
            read_bin(path, input_shape, dtype)  # raises the one-line DataFormatError
    out_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(bins), batchsize):
        chunk = bins[start : start + batchsize]
        video = np.concatenate([read_bin(p, input_shape, dtype) for p in chunk])
        t0 = time.perf_counter_ns()
        scores = run_batched(backend, video)
        compute_ms = (time.perf_counter_ns() - t0) / 1e6
        per_input = scores.reshape(len(chunk), -1, scores.shape[-1])
        for path, rows in zip(chunk, per_input, strict=True):
            write_atomic(out_dir / result_name(path.stem, outfmt), result_bytes(rows, outfmt))
        yield BatchOutcome([p.stem for p in chunk], compute_ms)


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))
