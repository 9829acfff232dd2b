"""Print the parity table of one or more models against ../shared/golden (mmaction2's outputs).

    python tools/golden_parity.py MODEL[@BACKEND[:PRECISION]]... [--golden DIR] [--threads 2]

Per golden video: frame indices and cropped frames equal?, max |score diff|, top-1 and
top-5-set agreement, the reference's top-1 margin. Fills docs/measurements/parity.md's table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from slowfast_deploy.engine.base import DecodeOptions, VideoJob
from slowfast_deploy.engine.decode import decode_job
from slowfast_deploy.engine.scoring import score_views
from slowfast_deploy.runtime import open_backend
from slowfast_deploy.runtime.base import input_dtype_of, model_input
from slowfast_deploy.runtime.benchmark import parse_model_arg as parse_model
from slowfast_deploy.specs import SINGLE_VIEW
from slowfast_deploy.video.decode import open_video
from slowfast_deploy.video.preprocess import crop_views
from slowfast_deploy.video.sampling import sample_clip_indices


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("models", nargs="+")
    parser.add_argument("--golden", type=Path, default=Path(__file__).parents[2] / "shared/golden")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--decoder", default="decord")
    args = parser.parse_args()
    entries = json.loads((args.golden / "manifest.json").read_text())
    inputs = {}
    print(f"| video | indices | cropped ({args.decoder}) | ref top-1 margin |")
    print("| --- | --- | --- | --- |")
    for e in entries:
        ref = np.load(args.golden / "reference" / f"{e['video']}.npz")
        path = args.golden / "videos" / e["video"]
        with open_video(path, decoder=args.decoder) as reader:
            idx = sample_clip_indices(reader.info.num_frames, SINGLE_VIEW.clip)[0]
            crops = crop_views(reader.read(idx), SINGLE_VIEW.preprocess)[0]
        top2 = np.sort(ref["scores"])[-2:]
        print(
            f"| {e['video']} | {'equal' if (idx == ref['frame_inds']).all() else 'DIFFER'} | "
            f"{'equal' if (crops == ref['cropped']).all() else 'DIFFER'} | "
            f"{top2[1] - top2[0]:.3f} |"
        )
        decoded = decode_job(
            VideoJob(str(path), str(path)), SINGLE_VIEW, DecodeOptions(args.decoder)
        )
        inputs[e["video"]] = (decoded.crops, ref["scores"], e)  # uint8 [V, T, S, S, 3]
    for text in args.models:
        path, backend_name, precision = parse_model(text)
        backend = open_backend(
            path, backend=backend_name, precision=precision, threads=args.threads
        )
        print(f"\n{text} ({backend.info.name} {backend.info.precision}, {backend.info.provider})")
        print("| video | max abs score diff | top-1 | top-5 set |")
        print("| --- | --- | --- | --- |")
        agree1 = agree5 = 0
        worst = 0.0
        for name, (crops, ref_scores, e) in inputs.items():
            # the model's own input: normalised float32, or the bytes for a uint8 model
            views = model_input(crops, SINGLE_VIEW.preprocess, input_dtype_of(backend))
            scores = score_views(backend, views[None])[0]
            diff = float(np.abs(scores - ref_scores).max())
            same1 = int(scores.argmax()) == e["top1"]
            same5 = set(np.argsort(scores)[-5:].tolist()) == set(e["top5"])
            agree1 += same1
            agree5 += same5
            worst = max(worst, diff)
            print(
                f"| {name} | {diff:.2e} | {'same' if same1 else 'DIFFERS'} | "
                f"{'same' if same5 else 'differs'} |"
            )
        print(
            f"total: top-1 {agree1}/{len(inputs)}, top-5 set {agree5}/{len(inputs)}, "
            f"max |diff| {worst:.2e}"
        )


if __name__ == "__main__":
    main()
