"""The int8 speed/agreement curve: presets x calibration sets x number of blocks kept in fp32.

For each setting it quantizes once, ranks the residual blocks with ``search_recipe`` (the search
``compile --min-agreement`` runs, on the validation clips), keeps the top-k blocks in fp32 for
several k, judges every model against the fp32 model on the test clips (and the golden clips,
in-sample when they were calibrated on), saves each as an IR with its fidelity in the metadata,
then times them all in one alternating run (``benchmark.bench_alternating``, as
``bench --compare``) with the PyTorch fp32 checkpoint as the baseline, and OpenVINO fp32/bf16.

    python tools/int8_sweep.py --onnx slowfast.onnx --checkpoint ckpt.pth \
        --calibration golden8=prep/bin --calibration golden40=calib40 \
        --validation val --test test --golden prep/bin --out sweep/ [--threads 2]

Writes ``OUT/sweep.json`` (one row per model; ``slowfast-deploy report --curve`` plots it) and
prints the table as Markdown.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
from pathlib import Path

import numpy as np

from slowfast_deploy.quantize.calibration import ClipSet, load_clip_set
from slowfast_deploy.quantize.fidelity import Fidelity, compare_scores, write_fidelity
from slowfast_deploy.quantize.search import (
    Recipe,
    conv_names,
    keep_fp32,
    layer_groups,
    quantize_model,
    search_recipe,
)
from slowfast_deploy.reference.formats import BIN_SHAPE
from slowfast_deploy.runtime import open_backend, run_batched
from slowfast_deploy.runtime.benchmark import bench_alternating, cpu_name
from slowfast_deploy.runtime.openvino_ir import load_onnx, onnx_metadata, save_ir, to_openvino


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--onnx", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True, help="the PyTorch fp32 baseline")
    p.add_argument("--calibration", action="append", required=True, metavar="NAME=DIR[@PRESET,...]")
    p.add_argument("--presets", default="mixed", help="comma list: mixed,performance")
    p.add_argument("--validation", type=Path, required=True, help="clips the search ranks on")
    p.add_argument("--test", type=Path, required=True, help="clips the curve is judged on")
    p.add_argument("--golden", type=Path, default=None, help="golden clips (reported too)")
    p.add_argument("--blocks", default="0,4,8,12,16,22", help="blocks kept in fp32")
    p.add_argument("--max-minutes", type=float, default=10.0, help="ranking budget per setting")
    p.add_argument(
        "--ranking",
        type=Path,
        default=None,
        help="reuse the block ranking of an earlier sweep's search_*.json instead of searching",
    )
    p.add_argument("--loop", type=int, default=5, help="timed calls per model")
    p.add_argument(
        "--bf16-blocks",
        default="8,16",
        type=lambda t: {int(b) for b in t.split(",")},
        help="for these k, also time the int8 model with its fp32 layers run in bf16",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("nncf").setLevel(logging.ERROR)
    args.out.mkdir(parents=True, exist_ok=True)

    proto = load_onnx(args.onnx)
    meta = onnx_metadata(proto)
    fp32 = to_openvino(proto)
    fp32_xml = save_ir(fp32, args.out / "fp32", {**meta, "precision": "fp32"})
    sets = {"validation": load_clip_set(args.validation, 10**6)}
    sets["test"] = load_clip_set(args.test, 10**6)
    if args.golden:
        sets["golden"] = load_clip_set(args.golden, 10**6)
    reference_backend = open_backend(fp32_xml, threads=args.threads)
    ref = {k: _scores(reference_backend, s.clips) for k, s in sets.items()}
    reference_backend.close()

    def judge(model_path: Path, precision: str | None = None) -> dict[str, object]:
        backend = open_backend(model_path, precision=precision, threads=args.threads)
        out = {}
        for key, clip_set in sets.items():
            fidelity = compare_scores(ref[key], _scores(backend, clip_set.clips))
            out[key] = json.loads(fidelity.to_json())
        backend.close()
        return out

    rows: list[dict[str, object]] = [
        {"name": "openvino fp32", "precision": "fp32", "path": str(fp32_xml)},
        {
            "name": "openvino bf16",
            "precision": "bf16",
            "path": str(fp32_xml),
            "fidelity": judge(fp32_xml, "bf16"),
        },
    ]
    blocks = [int(b) for b in args.blocks.split(",")]
    for spec in args.calibration:
        cal_name, _, rest = spec.partition("=")
        cal_dir, _, presets = rest.partition("@")  # NAME=DIR[@PRESET,...] overrides --presets
        calibration = load_clip_set(cal_dir, 10**6)
        for preset in (presets or args.presets).split(","):
            recipe = Recipe(preset=preset)
            valid = sets["validation"]

            def evaluate(model, subset, valid=valid):  # type: ignore[no-untyped-def]
                import openvino as ov

                compiled = ov.Core().compile_model(
                    model,
                    "CPU",
                    {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": args.threads},
                )
                index = list(range(len(valid))) if subset is None else list(subset)
                got = np.concatenate([compiled(valid.clips[i])[0] for i in index])
                return compare_scores(ref["validation"][index], got), got

            if args.ranking is not None:
                ranking = json.loads(args.ranking.read_text())["ranking"]
                search = None
            else:
                search = search_recipe(
                    fp32,
                    calibration.clips,
                    evaluate,
                    reference=ref["validation"],
                    min_agreement=1.0,
                    max_minutes=args.max_minutes,
                    base=recipe,
                )
                ranking = search.ranking
            order = [key for key, _ in ranking]
            groups = dict(layer_groups(conv_names(fp32)))
            order += [key for key in groups if key not in order]
            quantized = quantize_model(fp32, calibration.clips, recipe)
            for k in sorted({min(b, len(order)) for b in blocks}):
                names = tuple(n for key in order[:k] for n in groups[key])
                model = keep_fp32(quantized, fp32, names) if names else quantized
                name = f"int8 {preset} {cal_name} fp32-blocks {k}"
                path = args.out / f"int8_{preset}_{cal_name}_k{k}"
                xml = save_ir(model, path, {**meta, "precision": "int8"})
                fidelity = judge(xml)
                write_fidelity(xml, Fidelity(**fidelity["test"]))  # type: ignore[arg-type]
                rows.append(
                    {
                        "name": name,
                        "precision": "int8",
                        "preset": preset,
                        "calibration": f"{cal_name} ({len(calibration)} clips)",
                        "blocks_fp32": k,
                        "layers_fp32": len(names),
                        "path": str(xml),
                        "fidelity": fidelity,
                    }
                )
                Path(path.with_suffix(".recipe.json")).write_text(
                    Recipe(preset=preset, keep_fp32=names, calibration=calibration.names).to_json()
                )
                print(name, fidelity["test"], flush=True)
            if search is None:
                continue
            (args.out / f"search_{preset}_{cal_name}.json").write_text(
                json.dumps(
                    {
                        "ranking": search.ranking,
                        "steps": [
                            {
                                "blocks": s.num_groups,
                                "layers": s.num_layers,
                                "validation": json.loads(s.fidelity.to_json()),
                            }
                            for s in search.steps
                        ],
                    },
                    indent=1,
                )
            )
    _time(rows, args, sets, ref)
    summary = {
        "cpu": cpu_name(),
        "machine": platform.platform(),
        "threads": args.threads,
        "loop": args.loop,
        "clips": {k: s.describe() for k, s in sets.items()},
        "rows": rows,
    }
    (args.out / "sweep.json").write_text(json.dumps(summary, indent=1) + "\n")
    sys.stdout.write(markdown(summary))
    return 0


def _scores(backend, clips) -> np.ndarray:  # type: ignore[no-untyped-def]
    from slowfast_deploy.runtime.base import to_probs

    return np.concatenate([to_probs(run_batched(backend, c), backend.output_kind) for c in clips])


def _time(
    rows: list[dict[str, object]],
    args: argparse.Namespace,
    sets: dict[str, ClipSet],
    ref: dict[str, np.ndarray],
) -> None:
    """One alternating run over the PyTorch baseline and every model in ``rows``."""
    import openvino as ov

    runners = []
    torch_backend = open_backend(args.checkpoint, threads=args.threads)
    runners.append(("pytorch fp32", "torch", "fp32", "", lambda v: run_batched(torch_backend, v)))
    for row in rows:
        backend = open_backend(str(row["path"]), precision=row["precision"], threads=args.threads)
        runners.append(
            (row["name"], "openvino", row["precision"], "", lambda v, b=backend: b.run(v))
        )
    # int8 with the kept layers in bf16 instead of fp32 (the runtime runs int8 IRs with the f32
    # hint today): compiled here directly, for the settings named in --bf16-blocks
    for row in list(rows):
        if row.get("blocks_fp32") in args.bf16_blocks:
            compiled = ov.Core().compile_model(
                str(row["path"]),
                "CPU",
                {
                    "INFERENCE_PRECISION_HINT": "bf16",
                    "PERFORMANCE_HINT": "LATENCY",
                    "INFERENCE_NUM_THREADS": args.threads,
                },
            )
            request = compiled.create_infer_request()
            name = f"{row['name']} kept in bf16"
            runners.append(
                (name, "openvino", "int8+bf16", "", lambda v, r=request: r.infer({0: v}))
            )
            fidelity = {
                key: json.loads(
                    compare_scores(
                        ref[key], np.concatenate([compiled(c)[0] for c in clip_set.clips])
                    ).to_json()
                )
                for key, clip_set in sets.items()
            }
            rows.append({**row, "name": name, "precision": "int8+bf16", "fidelity": fidelity})
    rng = np.random.default_rng(0)
    timed = bench_alternating(
        runners,
        batchsizes=[1],
        make_input=lambda n: rng.standard_normal((n, *BIN_SHAPE[1:]), dtype=np.float32),
        loop=args.loop,
        warmup=1,
        baseline=0,
    )
    rows.insert(0, {"name": "pytorch fp32", "precision": "fp32"})
    for row, r in zip(rows, timed, strict=True):
        row.update(
            median_ms=round(r.latency.median_ms, 1),
            clips_per_s=round(r.throughput, 3),
            speedup=round(r.speedup or 0.0, 2),
        )


def markdown(summary: dict[str, object]) -> str:
    lines = [
        f"CPU: {summary['cpu']}, {summary['threads']} threads, {summary['loop']} alternating calls",
        "",
        "| model | fp32 layers | clips/s | speed-up | test top-1 | test top-5 set | test max diff "
        "| clear flips | golden top-1 | golden top-5 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary["rows"]:  # type: ignore[attr-defined]
        f = row.get("fidelity") or {}
        t, g = f.get("test"), f.get("golden")
        lines.append(
            f"| {row['name']} | {row.get('layers_fp32', '-')} | {row.get('clips_per_s', '-')} | "
            f"{row.get('speedup', '-')}x | "
            + (
                f"{t['top1_agree']}/{t['num_clips']} | {t['top5_agree']}/{t['num_clips']} | "
                f"{t['max_score_diff']:.3f} | {t['clear_flipped']}/{t['num_clear']} | "
                if t
                else "- | - | - | - | "
            )
            + (
                f"{g['top1_agree']}/{g['num_clips']} | {g['top5_agree']}/{g['num_clips']} |"
                if g
                else "- | - |"
            )
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
