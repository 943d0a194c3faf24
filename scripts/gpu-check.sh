#!/usr/bin/env bash
# scripts/gpu-check.sh [--skip-install] [OUT_DIR]: the CUDA path measured on real hardware, in at most 8 minutes.
#
# On a machine where `nvidia-smi -L` lists a GPU: builds the CUDA environment (BRIDGE_TORCH=cuda npm install),
# runs `bridge doctor`, the pytest tests marked `cuda`, `bench model` (and the LM at the ulmfit preset's sizes),
# `bench train` at configs/ulmfit-snli.yaml's sizes (400/1150/3, siamese batch 128) for pipeline depths 2 and 4,
# `bench embed`, and `train --nproc 2` for a few steps (one GPU: both ranks on it, joined by gloo, because NCCL
# refuses two ranks on one GPU; two or more GPUs: one rank each, NCCL). Every figure goes as JSON under OUT_DIR
# (default $OUT, else ./gpu-check-out), each step's log beside it (STEP.log); a failing step is recorded and the
# script goes on. summary.json lists every step: status, seconds, exit code.
#
# Without a GPU it takes its CPU-skip path at once: says so, runs the cuda-marked tests (they skip with a
# message), writes summary.json saying what was skipped, exits 0.
#
#   --skip-install (or BRIDGE_GPU_CHECK_SKIP_INSTALL=1): use the environment as it is (no npm install)
#   BRIDGE_DATA_DIR: datasets for bench train / train --nproc (default ../shared/data, then shared/data)
#   BRIDGE_GPU_CHECK_BUDGET_S: the whole script's time (default 480); steps past it are recorded as not run
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
SKIP_INSTALL=${BRIDGE_GPU_CHECK_SKIP_INSTALL:-0}
OUT_DIR=""
for a in "$@"; do
  case "$a" in
    --skip-install) SKIP_INSTALL=1 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu-check: unknown option $a (see --help)" >&2; exit 2 ;;
    *) OUT_DIR=$a ;;
  esac
done
OUT_DIR=${OUT_DIR:-${OUT:-$ROOT/gpu-check-out}}
mkdir -p "$OUT_DIR" || { echo "gpu-check: cannot create $OUT_DIR" >&2; exit 2; }
OUT_DIR=$(cd "$OUT_DIR" && pwd)

BUDGET_S=${BRIDGE_GPU_CHECK_BUDGET_S:-480} # the whole script: 8 minutes
START=$(date +%s)
STEPS="$OUT_DIR/.steps.jsonl"
: >"$STEPS"
PY=(node "$ROOT/dist/ts/setup/pythonEnv.js" --exec)
BRIDGE=(node "$ROOT/bin/bridge.js")

elapsed() { echo $(($(date +%s) - START)); }

# record NAME STATUS SECONDS RC NOTE: one line of summary.json's steps
record() {
  node -e 'const [name, status, seconds, rc, note] = process.argv.slice(1);
    console.log(JSON.stringify({ name, status, seconds: Number(seconds), exit_code: rc === "" ? null : Number(rc), note: note || undefined }));' \
    "$@" >>"$STEPS"
}

# step NAME LIMIT_S CMD...: runs CMD with its output in NAME.log, within LIMIT_S and what is left of the budget;
# a command whose stdout is one JSON object also leaves NAME.json.
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET_S - $(elapsed) - 5))
  if ((left < 20)); then
    echo "gpu-check: $name not run: the ${BUDGET_S} s budget is spent"
    record "$name" "not_run" 0 "" "budget spent"
    return 0
  fi
  ((limit > left)) && limit=$left
  echo "gpu-check: $name (at most ${limit} s) ..."
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$OUT_DIR/$name.out" 2>"$OUT_DIR/$name.log"
  rc=$?
  # JSON on stdout becomes NAME.json; anything else joins the log
  if node -e 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))' "$OUT_DIR/$name.out" 2>/dev/null; then
    mv "$OUT_DIR/$name.out" "$OUT_DIR/$name.json"
  else
    cat "$OUT_DIR/$name.out" >>"$OUT_DIR/$name.log"
    rm -f "$OUT_DIR/$name.out"
  fi
  local status=ok note=""
  if ((rc == 124 || rc == 137)); then status=timeout note="stopped after ${limit} s"; elif ((rc != 0)); then status=failed note=$(tail -n 3 "$OUT_DIR/$name.log" | tr '\n' ' ' | cut -c1-300); fi
  record "$name" "$status" $(($(date +%s) - t0)) "$rc" "$note"
  echo "gpu-check: $name: $status ($(($(date +%s) - t0)) s)"
}

# skip NAME WHY: a step that cannot run here
skip() {
  echo "gpu-check: $1 skipped: $2"
  record "$1" "skipped" 0 "" "$2"
}

# summary GPU_NAME: summary.json from the steps, the cuda tests' counts and the machine
summary() {
  node -e '
    const fs = require("fs");
    const [out, gpu, seconds] = process.argv.slice(1);
    const steps = fs.readFileSync(`${out}/.steps.jsonl`, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
    let cudaTests = null;
    try {
      const log = fs.readFileSync(`${out}/cuda-tests.log`, "utf8");
      const count = (w) => Number((new RegExp(`(\\d+) ${w}`).exec(log) ?? [0, 0])[1]);
      cudaTests = { passed: count("passed"), failed: count("failed"), skipped: count("skipped"), errors: count("errors?"),
        skip_reasons: [...new Set([...log.matchAll(/SKIPPED \[\d+\] [^:]+:\d+: (.*)/g)].map((m) => m[1]))] };
    } catch {}
    const summary = { gpu: gpu || null, cuda_path: Boolean(gpu), seconds: Number(seconds), cuda_tests: cudaTests, steps,
      skipped: steps.filter((s) => s.status === "skipped").map((s) => s.name),
      failed: steps.filter((s) => s.status === "failed" || s.status === "timeout").map((s) => s.name) };
    fs.writeFileSync(`${out}/summary.json`, JSON.stringify(summary, null, 2) + "\n");
  ' "$OUT_DIR" "$1" "$(elapsed)"
  rm -f "$STEPS"
  echo "gpu-check: figures and logs in $OUT_DIR (summary.json)"
}

CUDA_TESTS=("${PY[@]}" -m pytest py/tests/test_cuda.py -m cuda -q -rs --color=no -p no:cacheprovider)
GPU_NAME=$( (nvidia-smi -L 2>/dev/null || true) | sed -n 's/^GPU 0: \(.*\) (UUID.*/\1/p' | head -n 1)
GPU_COUNT=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU [0-9]')

if [[ -z "$GPU_NAME" ]]; then
  echo "gpu-check: no GPU found (nvidia-smi -L lists none): CPU-skip path"
  [[ -x "$ROOT/.venv/bin/python" || -n "${BRIDGE_PYTHON:-}" ]] || step install 300 npm install --no-audit --no-fund
  step cuda-tests 120 "${CUDA_TESTS[@]}"
  for s in install-cuda doctor bench-model bench-model-ulmfit bench-train-depth2 bench-train-depth4 bench-embed nproc2; do
    skip "$s" "no GPU"
  done
  summary ""
  exit 0
fi

echo "gpu-check: $GPU_COUNT GPU(s), GPU 0: $GPU_NAME"
if [[ "$SKIP_INSTALL" == 1 ]]; then skip install-cuda "--skip-install"; else step install-cuda 300 env BRIDGE_TORCH=cuda npm install --no-audit --no-fund; fi
step doctor 60 "${BRIDGE[@]}" doctor --skip-pythonia
step cuda-tests 120 "${CUDA_TESTS[@]}"
step bench-model 60 "${BRIDGE[@]}" bench model
# LM tokens/s at the ulmfit preset's sizes (400/1150/3), the reference recipe's LM stage: batch 64, bptt 70
step bench-model-ulmfit 60 "${PY[@]}" -m bridge_backend.bench_model --json --preset ulmfit --bs 64 --bptt 70 --device cuda

DATA_DIR=${BRIDGE_DATA_DIR:-}
for d in "$ROOT/../shared/data" "$ROOT/shared/data"; do [[ -z "$DATA_DIR" && -d "$d" ]] && DATA_DIR=$d; done
if [[ -z "$DATA_DIR" ]]; then
  for s in bench-train-depth2 bench-train-depth4 nproc2; do skip "$s" "no datasets (set BRIDGE_DATA_DIR)"; done
else
  # configs/ulmfit-snli.yaml's model and batches, on at most 20k pairs (the benchmark times 200 steps of them)
  for depth in 2 4; do
    node -e '
      const fs = require("fs");
      const YAML = require("yaml");
      const cfg = YAML.parse(fs.readFileSync("configs/ulmfit-snli.yaml", "utf8"));
      cfg.data = { ...cfg.data, maxTrainPairs: 20000, maxValidPairs: 1000 };
      cfg.device = "cuda";
      cfg.pipelineDepth = Number(process.argv[2]);
      fs.writeFileSync(process.argv[1], JSON.stringify(cfg, null, 2));
    ' "$OUT_DIR/ulmfit-bench-depth$depth.config.json" "$depth"
    step "bench-train-depth$depth" 120 "${BRIDGE[@]}" bench train --config "$OUT_DIR/ulmfit-bench-depth$depth.config.json" --data-dir "$DATA_DIR"
  done
  # one GPU: both ranks pinned to it (gloo); several: one GPU a rank (NCCL). The run goes to OUT_DIR/runs.
  if ((GPU_COUNT >= 2)); then NPROC_DEVICE=cuda; else NPROC_DEVICE=cuda:0; fi
  step nproc2 120 env BRIDGE_RUNS_DIR="$OUT_DIR/runs" "${BRIDGE[@]}" train --config configs/tiny.yaml --run nproc2 --nproc 2 --quiet \
    --set device=$NPROC_DEVICE --set stages.0.steps=20 --set stages.1.steps=20 --data-dir "$DATA_DIR"
  [[ -f "$OUT_DIR/runs/nproc2/run.json" ]] && cp "$OUT_DIR/runs/nproc2/run.json" "$OUT_DIR/nproc2-run.json"
fi
step bench-embed 90 "${BRIDGE[@]}" bench embed
summary "$GPU_NAME"
exit 0
