#!/bin/bash
# Everything issue 13 still has to see on a GPU, as one command on a lent device machine
# (a task gets ~15 minutes of device time in all: run it once, with a timeout that leaves a
# rerun; `bash tools/gpu/prepare.sh` first, here). With the device tool:
#   run(command: "bash tools/gpu/check.sh", carry: [".gpu-kit"], timeout_s: 540)
# Writes its log and results under $OUT (they come back): check.log, tables.txt, timing.json.
#
#  1. the machine: nvidia-smi, the kit's commit;
#  2. `bench doctor --device cuda` (the driver found, the GPU counted);
#  3. configs/sd_tiny.ron (tiny SD pipeline, DDPO and DAG-DB with LoRA, brightness reward,
#     DreamSim eval) on cuda and on cpu: the two tables side by side and the largest relative
#     difference of every evaluated number (float reduction order only: expect ≲1e-3);
#  4. the same sweep with the frozen networks in bf16 on cuda;
#  5. SD v1.5's UNet (random weights) at 512², forward and LoRA forward+backward, f32 and
#     bf16, bench against diffusers (tools/bench/unet_gpu_timing.py): images/s and % of peak.
# DEVICE=cpu runs 2–4 on the CPU (a dry run of the script where no GPU is lent).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu-check}
DEVICE=${DEVICE:-cuda}
mkdir -p "$OUT"
exec > >(tee "$OUT/check.log") 2>&1
KIT=/tmp/gpu-kit
rm -rf "$KIT" && mkdir -p "$KIT"
tar -C "$KIT" -xJf .gpu-kit/bin.tar.xz || { echo "no .gpu-kit/bin.tar.xz: run tools/gpu/prepare.sh here and carry .gpu-kit"; exit 2; }
BENCH=$KIT/bin/bench
step() { echo; echo "== $* ($(date +%T))"; }

step 1 machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || echo "no nvidia-smi"
echo "kit built at $(cat .gpu-kit/commit 2>/dev/null), tree at $(git rev-parse HEAD 2>/dev/null)"

step 2 doctor
"$BENCH" doctor --model fixtures/sd_tiny --device "$DEVICE"

step 3 tiny SD on "$DEVICE" and on cpu
RES=/tmp/gpu-check-results
rm -rf "$RES"
SWEEP=configs/sd_tiny.ron
"$BENCH" run "$SWEEP" --results "$RES/$DEVICE" --device "$DEVICE" --quiet
"$BENCH" run "$SWEEP" --results "$RES/cpu" --device cpu --quiet
step 4 tiny SD, frozen networks in bf16, on "$DEVICE"
# Beside the original, whose relative paths it keeps; gone whatever happens.
trap 'rm -f configs/.sd_tiny_bf16.ron' EXIT
sed 's/resolution: 16,/resolution: 16, dtype: Bf16,/' "$SWEEP" > configs/.sd_tiny_bf16.ron
"$BENCH" run configs/.sd_tiny_bf16.ron --results "$RES/${DEVICE}_bf16" --device "$DEVICE" --quiet
{
    for d in "$DEVICE" cpu "${DEVICE}_bf16"; do
        echo "## $d"; "$BENCH" table "$RES/$d/"*; echo
    done
} | tee "$OUT/tables.txt"
python3 tools/gpu/compare_runs.py "$RES/$DEVICE" "$RES/cpu" "$RES/${DEVICE}_bf16"

step 5 UNet timing
if [ "$DEVICE" = cuda ]; then
    if ls .gpu-kit/*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu-kit/*.whl \
            && export PYTHONPATH=/tmp/site
    fi
    PYTHONUNBUFFERED=1 python3 tools/bench/unet_gpu_timing.py --binary "$KIT/bin/unet_timing" \
        --device cuda --batch 4 --side 512 --reps 5 | tee "$OUT/timing.json"
else
    "$KIT/bin/unet_timing" cpu f32 1 64 1 | tee "$OUT/timing.json"
fi
step done
