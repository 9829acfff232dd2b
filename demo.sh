#!/usr/bin/env bash
# One command: set up (venv + install) and run the reference workflow end to end.
#   bash demo.sh                                     # generated sample videos
#   bash demo.sh VIDEO_DIR ANN_FILE [CHECKPOINT]     # your videos / mmaction2 checkpoint
# Without a checkpoint it uses ../shared/golden's random-weight mmaction2 checkpoint when
# present, else writes a randomly initialised one (accuracy is then meaningless by design).
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
. .venv/bin/activate
pip install -q -e '.[dev]'

WORK=${WORK:-runs/demo}
mkdir -p "$WORK"
if [ $# -ge 2 ]; then
  VIDEO_DIR=$1; ANN=$2
else
  VIDEO_DIR=$WORK/videos
  ANN=$(python -c "from slowfast_deploy.video.samples import write_samples; print(write_samples('$VIDEO_DIR'))")
fi
CKPT=${3:-}
if [ -z "$CKPT" ]; then
  if [ -f ../shared/golden/slowfast_r50_8x8x1_random_seed0.pth ]; then
    CKPT=../shared/golden/slowfast_r50_8x8x1_random_seed0.pth
  else
    CKPT=$WORK/random_init.pth
    [ -f "$CKPT" ] || python -c "
import torch; from slowfast_deploy.model.slowfast import slowfast_r50
torch.manual_seed(0); torch.save({'state_dict': slowfast_r50().state_dict()}, '$CKPT')"
  fi
fi
set -x
# 1. preprocess -> .bin files (the guide's step 1)
slowfast-deploy preprocess --video-dir "$VIDEO_DIR" --ann-file "$ANN" --save-dir "$WORK/prep_dataset"
# 2-3. export with softmax, simplified (steps 2-3); 4. compile for OpenVINO (the guide's ATC)
[ -f "$WORK/slowfast.onnx" ] || slowfast-deploy export --checkpoint "$CKPT" \
  --output-file "$WORK/slowfast.onnx" --softmax --simplify
slowfast-deploy compile "$WORK/slowfast.onnx" --backend openvino --precision fp32 --output "$WORK/slowfast_ov"
# 5. inference over the .bin files; 7. accuracy
slowfast-deploy infer --model "$WORK/slowfast_ov.xml" --input "$WORK/prep_dataset/bin" --output "$WORK" \
  --output-dirname result_bs1 --outfmt TXT --batchsize 1
slowfast-deploy evaluate --result-dir "$WORK/result_bs1" --label-file "$WORK/prep_dataset/kinetics400.info"
# 6. model-only throughput, every backend in one alternating run, speed-ups over PyTorch fp32
slowfast-deploy bench --model "$CKPT" --compare "$WORK/slowfast.onnx@onnxruntime" \
  "$WORK/slowfast_ov.xml" --batchsize 1 --loop "${LOOP:-3}" --warmup 1 --summary "$WORK/bench.json"
# beyond the guide: videos -> accuracy without .bin files (resumable), then a report
slowfast-deploy evaluate --video-dir "$VIDEO_DIR" --ann-file "$ANN" --model "$WORK/slowfast_ov.xml" \
  --output "$WORK/results.jsonl" --num-workers 1 || [ $? -eq 3 ]
slowfast-deploy report "$WORK/results.jsonl" --bench "$WORK/bench.json" --model "$WORK/slowfast_ov.xml" \
  --out "$WORK/report.html"
