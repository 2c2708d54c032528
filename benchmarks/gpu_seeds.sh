#!/usr/bin/env bash
# Many seeds on one CUDA GPU, in one go: Model3's training method chosen on the validation split, then Model3
# and Model4 trained on test seeds 1-20 with that choice. Runs go side by side in worker processes (--jobs).
#
#   bash benchmarks/gpu_seeds.sh OUT_DIR [SECONDS]     # stops starting work after SECONDS (default 560)
#   DEVICE=cpu JOBS=2 EXTRA="--epochs 1 --limit-train 512" bash benchmarks/gpu_seeds.sh /tmp/try 300   # a look
#
# The choice, fixed before any run: each seed is scored by its validation accuracy over Model3's target window
# (the last 5 epochs); the moving average of the weights (--ema-decay 0.999) is kept if its mean over seeds 1-10
# is higher than without it (--ema-decay 0) and a two-sided permutation test of the two sets of ten gives
# p < 0.05; otherwise the runs go without it. The test set is read only in the second part.
set -u
out=${1:?give an output folder}
budget=${2:-560}
jobs=${JOBS:-20}
mkdir -p "$out"
# Eager steps: on a GPU a step of these models is launch-bound, and compiling (once per worker) does not repay.
common=(--device "${DEVICE:-cuda}" --compile off ${EXTRA:-})
started=$SECONDS
left() { echo $((budget - (SECONDS - started))); }

echo "== validation: Model3, seeds 1-10, with and without the average ($(nproc) CPU cores, $jobs workers)"
timeout -s TERM "$(left)" python3 main.py --models model3 --validation --seeds 1-10 --ema-decay 0 "${common[@]}" --jobs $((jobs / 2)) \
    --out "$out/validation" > "$out/validation-without.log" 2>&1 &
timeout -s TERM "$(left)" python3 main.py --models model3 --validation --seeds 1-10 --ema-decay 0.999 "${common[@]}" --jobs $((jobs / 2)) \
    --out "$out/validation" > "$out/validation-with.log" 2>&1 &
wait
echo "validation took $((SECONDS - started)) s"

decay=$(python3 - "$out/validation" <<'PYTHON'
import statistics, sys
from pathlib import Path
from records import load_record
from stats import permutation_p_value

records = [load_record(p.parent) for p in Path(sys.argv[1]).glob("*/metrics.json")]
scores = {decay: [r.window_accuracy() for r in records if r.status == "completed" and r.config["ema_decay"] == decay]
          for decay in (0.0, 0.999)}
for decay, values in scores.items():
    print(f"ema_decay {decay}: {len(values)} seeds, mean {statistics.mean(values):.4f}, "
          f"sd {statistics.stdev(values):.4f}, worst {min(values):.2f}", file=sys.stderr)
p = permutation_p_value(scores[0.999], scores[0.0])
better = statistics.mean(scores[0.999]) > statistics.mean(scores[0.0])
print(f"permutation test p = {p:.4f}; keep the average: {better and p < 0.05}", file=sys.stderr)
print(0.999 if better and p < 0.05 else 0)
PYTHON
) || decay=0
echo "chosen: --ema-decay $decay"

for model in model3 model4; do
    if [ "$(left)" -lt 90 ]; then echo "no time left for $model"; continue; fi
    echo "== test: $model, seeds 1-20, --ema-decay $decay ($(left) s left)"
    timeout -s TERM "$(left)" python3 main.py --models $model --seeds 1-20 --ema-decay "$decay" "${common[@]}" \
        --jobs "$jobs" --out "$out/test" > "$out/test-$model.log" 2>&1
    echo "$model done after $((SECONDS - started)) s"
done
