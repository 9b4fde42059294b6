#!/usr/bin/env bash
# The GPU runs of issues 9-11 in one device call (what produced analyses/results and the committed
# leaderboard / scaling tables). Usage on the CUDA machine, from the repository root:
#   bash scripts/gpu_open_issues.sh OUT SECONDS
# SECONDS: wall clock for the whole call; ~45 % goes to the leaderboard and multi-task scaling
# (run side by side), the rest to the six figures. Needs the zarr wheels in .whl/ (carried).
set -u
OUT=${1:?out folder}; TOTAL=${2:-540}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=.:/tmp/site PYTHONUNBUFFERED=1
W=/tmp/gpu_open_issues; mkdir -p $W/lb $W/mt "$OUT/fig"
A=$(( TOTAL * 45 / 100 )); B=$(( TOTAL - A - 20 ))
am=$(python3 -c "print(round(($A - 15) / 60, 2))"); bm=$(python3 -c "print(round(($B - 15) / 60, 2))")
echo "leaderboard + multi-task: $A s ($am min budgets); figures: $B s ($bm min)"
timeout $A python3 scripts/gpu_leaderboard.py --out $W/lb --budget-minutes $am > $W/lb/stdout.log 2>&1 &
timeout $A python3 scripts/gpu_multitask_scaling.py --out $W/mt --budget-minutes $am --procs 6 > $W/mt/stdout.log 2>&1 &
wait
tail -n 12 $W/lb/stdout.log $W/mt/stdout.log
tar czf "$OUT/leaderboard_multitask.tar.gz" -C $W lb mt
timeout $B python3 scripts/gpu_figures.py --out "$OUT/fig" --budget-minutes $bm 2>&1 | tail -n 25
