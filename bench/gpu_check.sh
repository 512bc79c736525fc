#!/usr/bin/env bash
# GPU check (issues 7 and 6): the CUDA paths that CI (CPU only) never runs, in about 6 minutes.
#
#   bash bench/gpu_check.sh                      # from the repo root, on a machine with a GPU
#   GPU_CHECK_ACCELERATOR=cpu GPU_CHECK_STRATEGY=auto bash bench/gpu_check.sh   # dry run, CPU
#
# (a) the GPU; (b) `trainwise run` on MNIST-1D with run.accelerator=cuda (test accuracy, time);
# (c) `--strategy fsdp --devices 1`: an uninterrupted run, the same run SIGKILLed while
#     writing a checkpoint then `--resume`d, their final weights compared (deterministic
#     kernels on, so bitwise is expected); (d) tune.batch_size=auto on the GPU (the CUDA
#     allocator branch of the search); (e) pytest of the tests with GPU paths, tests/test_gpu.py
#     among them (range test without trace on CUDA, a real CUDA out-of-memory caught, short runs
#     on the GPU); (f) (b) again at run.precision = "bf16-mixed" and "16-mixed" (float16, loss
#     scaler: skipped steps found); (g) `trainwise find-lr --json` on the GPU (range, spread).
# Logs go to $OUT (default ./gpu_check_out): one per part, and summary.txt. Run folders go to
# $GPU_CHECK_RUNS (default /tmp/gpu_check_runs), too many files to bring back.
#
# Python: .venv/bin/python when it works; else python3 (a GPU image with torch), plus the
# wheels in .whl/ when present (pydantic, mnist1d, torchinfo, ...: carry .whl along).
set -u
OUT=${OUT:-$PWD/gpu_check_out}
RUNS=${GPU_CHECK_RUNS:-/tmp/gpu_check_runs}
ACC=${GPU_CHECK_ACCELERATOR:-cuda}
STRATEGY=${GPU_CHECK_STRATEGY:-fsdp}
EPOCHS=${GPU_CHECK_EPOCHS:-10}          # (b)
FSDP_EPOCHS=${GPU_CHECK_FSDP_EPOCHS:-4}  # (c): 4 x 29 steps, a checkpoint every 10
mkdir -p "$OUT" "$RUNS"
rm -rf "${RUNS:?}"/*
SUMMARY=$OUT/summary.txt
: >"$SUMMARY"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-8}
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # deterministic cuBLAS, for the bitwise resume in (c)

note() { echo "$*" | tee -a "$SUMMARY"; }

if [ -x .venv/bin/python ] && .venv/bin/python -c "import torch" 2>/dev/null; then
    PY=.venv/bin/python
else
    PY=python3
    if [ -d .whl ]; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl || { note "FAIL: cannot install .whl/"; exit 1; }
        export PYTHONPATH=/tmp/site
    fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"  # trainwise from this checkout
export TW_TESTS="$PWD/tests"  # (c) imports the tests' fault injection (tests/faults.py)
TW=("$PY" -m trainwise.cli)
if ! $PY -c "import trainwise.cli, pydantic, mnist1d, torchinfo, lightning_fabric" \
        >"$OUT/a_imports.log" 2>&1; then
    note "FAIL: $PY cannot import trainwise and its dependencies (carry .whl/):"
    tail -3 "$OUT/a_imports.log" | tee -a "$SUMMARY"
    exit 1
fi

# part NAME SECONDS COMMAND...: run with a time limit, log to $OUT/NAME.log, record the status
part() {
    local name=$1 limit=$2 started rc
    shift 2
    started=$EPOCHREALTIME
    timeout "$limit" "$@" >>"$OUT/$name.log" 2>&1
    rc=$?
    LAST_SECONDS=$(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
    [ "$rc" = 124 ] && note "TIMEOUT: $name after ${limit}s (see $name.log)"
    return $rc
}

run_folder() { ls -d "$1"/*/ 2>/dev/null | head -1; }  # the one run folder under an out_dir

# --- (a) the GPU and the software -----------------------------------------------------------
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 ||
        echo "nvidia-smi: not available"
    $PY -c "import sys, torch, lightning_fabric as lf; print('python', sys.version.split()[0],
'torch', torch.__version__, 'fabric', lf.__version__, 'cuda available', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/a_gpu.log" | sed 's/^/(a) /' | tee -a "$SUMMARY"

# --- (b) the whole recipe on the GPU --------------------------------------------------------
part b_run 110 "${TW[@]}" run --set "run.accelerator=\"$ACC\"" \
    --set "train.max_epochs=$EPOCHS" --set "run.out_dir=\"$RUNS/b\""
rc=$?
B=$(run_folder "$RUNS/b")
ACCURACY=$($PY -c "import json,sys; t=json.load(open(sys.argv[1]+'/meta.json')).get('test',{});
print(f\"{t['test_accuracy']:.2%}\" if 'test_accuracy' in t else 'none')" "$B" 2>/dev/null)
STAGES=$($PY -c "import json,sys; s=json.load(open(sys.argv[1]+'/meta.json'))['stage_seconds'];
print(f\"tune {s['tune']:.1f}s / train {s['train']:.1f}s = {s['tune'] / s['train']:.2f}x\")" "$B" \
    2>/dev/null)
note "(b) trainwise run, $ACC, $EPOCHS epochs: exit $rc, test accuracy ${ACCURACY:-none}," \
     "${LAST_SECONDS}s wall; ${STAGES:-no stage times}"
[ -n "$B" ] && [ -f "$B/report.html" ] && cp "$B/report.html" "$OUT/b_report.html"

# --- (c) FSDP: uninterrupted, killed mid-save, resumed --------------------------------------
cat >"$RUNS/fsdp_run.py" <<'EOF'
"""`trainwise.cli` with deterministic kernels; KILL_AT_SAVE=N: SIGKILL while writing save N."""
import os
import sys

import torch

torch.use_deterministic_algorithms(True, warn_only=True)
torch.backends.cudnn.benchmark = False
kill_at = int(os.environ.get("KILL_AT_SAVE", "0"))
if kill_at:
    sys.path.insert(0, os.environ["TW_TESTS"])  # the checkout's tests/: the tests' own helper
    from faults import die_at_save

    die_at_save(kill_at, announce=True)
from trainwise.cli import main

sys.exit(main(sys.argv[1:]))
EOF
FSDP_SET=(--no-report --strategy "$STRATEGY" --devices 1 --set "run.accelerator=\"$ACC\""
          --set "train.max_epochs=$FSDP_EPOCHS" --set train.lr=0.003 --set run.checks=false
          --set run.checkpoint_every_steps=10)
part c_fsdp 80 "$PY" "$RUNS/fsdp_run.py" run "${FSDP_SET[@]}" --set "run.out_dir=\"$RUNS/c_whole\""
note "(c) $STRATEGY uninterrupted: exit $?, ${LAST_SECONDS}s"
# saves at steps 0, 10, 20, 29 (epoch end), 30, 40: dies writing step 40, last.pt is step 30
KILL_AT_SAVE=6 part c_fsdp 80 "$PY" "$RUNS/fsdp_run.py" run "${FSDP_SET[@]}" \
    --set "run.out_dir=\"$RUNS/c_killed\""
note "(c) $STRATEGY killed at checkpoint 6: exit $? (137 = SIGKILL, expected), ${LAST_SECONDS}s"
KILLED=$(run_folder "$RUNS/c_killed")
if [ -n "$KILLED" ]; then
    part c_fsdp 80 "$PY" "$RUNS/fsdp_run.py" run --resume "$KILLED" --no-report
    note "(c) $STRATEGY resumed: exit $?, ${LAST_SECONDS}s"
fi
$PY - "$(run_folder "$RUNS/c_whole")" "$KILLED" >>"$OUT/c_fsdp.log" 2>&1 <<'EOF'
import json
import sys

import torch

whole, resumed = sys.argv[1], sys.argv[2]
lines = []
for name in ("last.pt", "best.pt"):
    ours = torch.load(f"{resumed}/checkpoints/{name}", weights_only=True, map_location="cpu")
    theirs = torch.load(f"{whole}/checkpoints/{name}", weights_only=True, map_location="cpu")
    a, b = ours["model"], theirs["model"]
    bitwise = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in b)
    diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in b)
    extra = f", world_size {ours.get('world_size')}, step {ours['train_state']['step']}" \
        if "train_state" in ours else ""
    lines.append(f"{name}: {'BITWISE EQUAL' if bitwise else 'DIFFERENT'} "
                 f"(max |diff| {diff:.3g}{extra})")
tests = [json.load(open(f"{p}/meta.json")).get("test", {}).get("test_accuracy") for p in
         (whole, resumed)]
lines.append(f"test accuracy uninterrupted {tests[0]}, resumed {tests[1]}")
findings = json.load(open(f"{resumed}/findings.json"))
lines += [f"finding: {f['message']}" for f in findings if f["code"] == "resumed"]
print("\n".join(lines))
print("RESULT", "PASS" if all("BITWISE" in x for x in lines[:2]) else "FAIL")
EOF
grep -E "^(last|best)\.pt|^test accuracy|^finding|^RESULT" "$OUT/c_fsdp.log" | sed 's/^/(c) /' |
    tee -a "$SUMMARY"

# --- (d) batch size search on the GPU -------------------------------------------------------
part d_batch_size 80 "${TW[@]}" tune --no-report --set "run.accelerator=\"$ACC\"" \
    --set 'tune.batch_size="auto"' --set train.lr=0.003 --set run.checks=false \
    --set "run.out_dir=\"$RUNS/d\""
rc=$?
D=$(run_folder "$RUNS/d")
CHOSEN=$($PY -c "import json,sys; b=json.load(open(sys.argv[1]+'/tune.json'))['batch_size'];
print(b.get('chosen'), 'memory limit', b.get('memory_limit'), 'trials',
[(t['batch_size'], t['status']) for t in b.get('trials', [])])" "$D" 2>>"$OUT/d_batch_size.log")
note "(d) tune.batch_size=auto on $ACC: exit $rc, chosen ${CHOSEN:-none}, ${LAST_SECONDS}s"

# --- (f) mixed precision: the same run as (b) at bf16-mixed, then at 16-mixed (loss scaler) --
for PRECISION in bf16-mixed 16-mixed; do
    part f_mixed 110 "${TW[@]}" run --no-report --set "run.accelerator=\"$ACC\"" \
        --set "train.max_epochs=$EPOCHS" --set "run.precision=\"$PRECISION\"" \
        --set "run.out_dir=\"$RUNS/f_$PRECISION\""
    rc=$?
    F=$(run_folder "$RUNS/f_$PRECISION")
    F_RESULT=$($PY -c "import json,sys; m=json.load(open(sys.argv[1]+'/meta.json'));
t=m.get('test',{}); s=m['stage_seconds']; f=json.load(open(sys.argv[1]+'/findings.json'));
print(m.get('precision'), 'test accuracy', f\"{t['test_accuracy']:.2%}\" if 'test_accuracy' in t
else 'none', 'tune', s.get('tune'), 's train', s.get('train'), 's;', [x['message'] for x in f
if x['code'] in ('loss_scaler_skips', 'precision_changed', 'divergence')])" "$F" \
        2>>"$OUT/f_mixed.log")
    note "(f) trainwise run, $ACC, $PRECISION: exit $rc, ${F_RESULT:-no meta.json}," \
         "${LAST_SECONDS}s wall (compare (b))"
done

# --- (g) the range test alone on the GPU: its range and the seeds' spread ------------------
part g_find_lr 80 "${TW[@]}" find-lr --no-report --json --set "run.accelerator=\"$ACC\"" \
    --set "run.out_dir=\"$RUNS/g\""
rc=$?
G_RESULT=$(grep -E '^\{' "$OUT/g_find_lr.log" | tail -1 | $PY -c "import json,sys;
t=json.load(sys.stdin)['tune']; print(f\"lr {t['lr']:.3g}, range {t['lr_low']:.3g}..\"
f\"{t['lr_high']:.3g}, spread {t['spread_decades']:.2f} decades\")" 2>>"$OUT/g_find_lr.log")
note "(g) trainwise find-lr on $ACC: exit $rc, ${G_RESULT:-no JSON line}, ${LAST_SECONDS}s"

# --- (e) the tests with GPU paths: FSDP on the GPU, checkpoints, batch size -----------------
# (test_fsdp.py first: its CPU tests fork, which CUDA forbids once this process has used it;
# test_resume.py forks after CUDA is in use, so it is a CPU test only)
part e_pytest 180 "$PY" -m pytest -q -p no:cacheprovider -W ignore tests/test_fsdp.py \
    tests/test_checkpoint.py tests/test_gpu.py tests/test_batch_size.py tests/test_lr_range.py \
    tests/test_tune_short_runs.py tests/test_tune_stage.py
rc=$?
note "(e) pytest: exit $rc, $(grep -E '[0-9]+ (passed|failed)' "$OUT/e_pytest.log" | tail -1)," \
     "${LAST_SECONDS}s"

echo; echo "=== summary ($OUT/summary.txt) ==="; cat "$SUMMARY"
