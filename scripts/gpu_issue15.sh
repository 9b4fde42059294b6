#!/usr/bin/env bash
# The GPU runs of issue 15 (training at the GPU's speed) in one device call, each under its own
# time limit, logs under OUT. Usage on the CUDA machine, from the repository root, with the zarr
# wheels in .whl/ (carried):  bash scripts/gpu_issue15.sh OUT [MODELS]
set -u
OUT=${1:?out folder}; MODELS=${2:-fig4,figure,paper}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=.:/tmp/site PYTHONUNBUFFERED=1
quiet() { grep -v -i -E "warn|^ *$"; }
echo "== training step: old path against the new (bench_train.py)"
timeout ${T_TRAIN:-330} python3 benchmarks/bench_train.py --models "$MODELS" --paths ${PATHS:-old,new,big} --steps 40 \
    --warmup 10 2>&1 | quiet | tee "$OUT/bench_train.log" | grep -E "^\[|measured"
echo "== the graph step learns what the eager step learns (bench_train_equivalence.py)"
timeout ${T_EQUIV:-150} python3 benchmarks/bench_train_equivalence.py --steps ${EQUIV_STEPS:-300} --out "$OUT" 2>&1 | quiet \
    | tee "$OUT/equivalence.log" | tail -n 5
if [ -f benchmarks/bench_record.py ]; then
  echo "== recording 120 min x 1000 neurons (bench_record.py)"
  timeout ${T_RECORD:-100} python3 benchmarks/bench_record.py --minutes 120 --neurons 1000 --device cuda 2>&1 | quiet \
      | tee "$OUT/bench_record.log" | tail -n 12
fi
