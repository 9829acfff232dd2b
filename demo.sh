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
  ANN=$(python -c "from slowfast_deploy.samples import write_samples; print(write_samples('$VIDEO_DIR'))")
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
slowfast-deploy preprocess --video-dir "$VIDEO_DIR" --ann-file "$ANN" --save-dir "$WORK/prep_dataset"
slowfast-deploy infer --model "$CKPT" --input "$WORK/prep_dataset/bin" --output "$WORK" \
  --output-dirname result_bs1 --outfmt TXT --batchsize 1
slowfast-deploy evaluate --result-dir "$WORK/result_bs1" --label-file "$WORK/prep_dataset/kinetics400.info"
