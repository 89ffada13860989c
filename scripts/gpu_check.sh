#!/usr/bin/env bash
# The GPU checks of the training loop in one short run, for a machine with a CUDA GPU and
# PyTorch but no package index (the `device` tool's machines):
#   1. `--device cuda` end to end: a suite on the GPU with 1 and then 4 processes sharing
#      it (the local executor's --jobs), wall time of each, and the accuracy of every cell
#      beside the committed CPU record of the same key;
#   2. training throughput on the GPU (tests/benchmarks/test_bench_train.py -k cuda):
#      fit vs a DataLoader loop, float32 and amp, and the share of the GPU's matmul rate.
# Logs go to $OUT (the device tool's folder) or ./gpu_check_out.
#   bash scripts/gpu_check.sh            # DEVICE, SUITE, PROFILE, JOBS override the defaults
set -uo pipefail
out=${OUT:-gpu_check_out}
device=${DEVICE:-cuda}
suite=${SUITE:-suites/whole_dataset.yaml}
profile=${PROFILE:-quick}
export PYTHONUNBUFFERED=1 AMRBENCH_CACHE=${AMRBENCH_CACHE:-/tmp/amrbench_gpu_check_cache}
mkdir -p "$out"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . >"$out/install.log" 2>&1 \
  || { echo "install failed, see $out/install.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$out/gpu.txt"

# the console script may not be on PATH there: call the CLI through this python
amrbench() { python3 -m amrbench.cli "$@"; }

# the data once, so neither timed run pays for generating it
python3 - "$suite" "$profile" <<'PY'
import sys
from amrbench.registry import default_registry
from amrbench.resources import load_splits
from amrbench.suite import load_suite
for dataset in load_suite(sys.argv[1], sys.argv[2]).datasets:
    load_splits(default_registry(), dataset)
PY

for jobs in 1 ${JOBS:-4}; do
  SECONDS=0
  # each run its own, empty results folder and artifact cache: the second must not reuse
  # the first's scoring runs, and a rerun of the script must not find stored cells
  rm -rf "$out/run_jobs$jobs" "$AMRBENCH_CACHE/artifacts_jobs$jobs"
  amrbench run "$suite" --profile "$profile" --device "$device" --jobs "$jobs" --results "$out/run_jobs$jobs" \
    --cache "$AMRBENCH_CACHE/artifacts_jobs$jobs" >"$out/run_jobs$jobs.log" 2>&1
  echo "--jobs $jobs: exit $?, ${SECONDS} s" | tee -a "$out/concurrency.txt"
done

python3 - "$suite" "$out/run_jobs1/records.jsonl" <<'PY' | tee "$out/accuracy.txt"
import json, sys
from pathlib import Path
from amrbench.suite import load_suite
committed = Path("results") / load_suite(sys.argv[1]).name / "records.jsonl"
cpu = {}
if committed.exists():
    cpu = {r["key"]: r for r in map(json.loads, committed.read_text().splitlines()) if r.get("status") == "ok"}
print(f"{'model':12} {'method':14} {'budget':16} {'seed':>4} {'this run':>8} {'committed':>9} {'train s':>8}")
for r in map(json.loads, Path(sys.argv[2]).read_text().splitlines()):
    if r.get("status") != "ok":
        print("failed:", r["key"], r.get("error")); continue
    c, m = r["config"], r["metrics"]
    other = cpu.get(r["key"], {}).get("metrics", {}).get("accuracy")
    print(f"{c['model']['target']:12} {c['method']['name']:14} {str(c['budget']):16} {c['seed']:>4} "
          f"{m['accuracy']:8.4f} {other if other is None else round(other, 4)!s:>9} {m.get('train_time_s', 0):8.1f}")
PY

if [ "$device" = cuda ]; then
  python3 -m pytest tests/benchmarks/test_bench_train.py -m benchmark --benchmark-enable -s -k cuda \
    -p no:cacheprovider 2>&1 | grep -E "^CUDA|passed|failed|skipped|Error" | tee "$out/throughput.txt"
fi
