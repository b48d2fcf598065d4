#!/usr/bin/env bash
# Check the project on a machine with a CUDA GPU, in one command, with every log in one folder:
#   1. the GPU tests, then the whole test suite (on the GPU machine's cores, 8 workers),
#   2. the benchmark on CUDA (python -m seq2seq.bench --device cuda),
#   3. real runs on the GPU: peeky_addition (25 epochs) and better_rnnlm_ptb (EPOCHS_BETTER epochs).
#
#   bash scripts/gpu_check.sh [LOG_DIR]        # default outputs/gpu_check; about 8 minutes on one H100
#
# Needs the project installed with its test extras (pip install -e ".[all,dev]") and PTB in PTB_DIR
# (default ../shared/data/ptb). EPOCHS_BETTER (default 40) shortens the better_rnnlm_ptb run;
# SKIP_SUITE=1 runs only the GPU tests; PYTHON names the interpreter (default python); PYTEST_ARGS are
# added to the whole suite's command. Each part runs under its own time limit and a failing part
# does not stop the next one; the exit status is that of the first failure.
set -uo pipefail
py=${PYTHON:-python}
out=${1:-outputs/gpu_check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PTB_DIR="${PTB_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data/ptb}"
status=0
step() {  # step NAME SECONDS COMMAND...: run, log to $out/NAME.log, remember the first failure
    local name=$1 limit=$2
    shift 2
    echo "== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$out/summary.txt"
    local started=$SECONDS
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "   exit $rc after $((SECONDS - started)) s; last lines:" | tee -a "$out/summary.txt"
    tail -n 4 "$out/$name.log" | sed 's/^/   /' | tee -a "$out/summary.txt"
    [ "$status" -eq 0 ] && [ "$rc" -ne 0 ] && status=$rc
    return 0
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt" 2>&1
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name())" \
    | tee -a "$out/gpu.txt"

step tests_gpu 240 "$py" -m pytest -q -p no:cacheprovider tests/test_gpu.py -rs
if [ "${SKIP_SUITE:-0}" != 1 ]; then
    workers=$("$py" -c "import importlib.util as u; print('-n 8' if u.find_spec('xdist') else '')")
    # 8 workers of 2 threads each: 8 of torch's default 16 threads would oversubscribe the cores.
    # -v names each test as it ends, so a log cut short by the time limit still says what failed.
    # shellcheck disable=SC2086  # $workers is empty or two words
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} step tests_all 300 "$py" -m pytest -v --tb=short -p no:cacheprovider \
        $workers ${PYTEST_ARGS:-}
fi
step bench 240 "$py" -m seq2seq.bench --device cuda --ptb-dir "$PTB_DIR" --out "$out/bench.json"
step peeky_addition 240 "$py" -m seq2seq.train experiment=peeky_addition trainer.device=cuda \
    trainer.progress=false "hydra.run.dir=$out/peeky_addition"
step better_rnnlm_ptb 600 "$py" -m seq2seq.train experiment=better_rnnlm_ptb trainer.device=cuda \
    "trainer.max_epochs=${EPOCHS_BETTER:-40}" "task.data_dir=$PTB_DIR" trainer.progress=false \
    "hydra.run.dir=$out/better_rnnlm_ptb"
grep -hE "epoch [0-9]+: train/loss|best checkpoint on test" "$out"/better_rnnlm_ptb.log "$out"/peeky_addition.log \
    >"$out/epochs.txt" 2>/dev/null
echo "logs in $out (summary.txt); exit $status"
exit "$status"
