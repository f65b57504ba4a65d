#!/bin/bash
# The GPU verdict in one run: `info`, `check`, `tune` on the benchmark shapes (its wisdom is
# what the benchmarks then run), and our forward, training and streaming benchmarks each
# beside PyTorch's (benches/cudnn_baseline.py, benches/stream_baseline.py) on the same
# machine. Writes $OUT/verdict.md (one Markdown table), $OUT/raw.jsonl (every JSON line, each
# tagged with its section and side), $OUT/wisdom.json and $OUT/log; prints the table.
#
#   bash benches/gpu_verdict.sh        # on a GPU machine, .gl/ prepared as
#                                      # ../shared/device/README.md says (its .gl/bin is used)
#   bash benches/gpu_verdict.sh --quick   # tiny shapes, 1 iteration: tries every step here
#                                         # (lavapipe, PyTorch on the CPU) in about a minute
#
# BIN, OUT, TORCH_DEVICE (cuda; cpu where CUDA is missing; none without PyTorch), ITERS and
# BUDGET_S (seconds of tuning per shape) override the defaults. Sized to finish in under 8
# minutes on an H100. Exits 4 when any of our runs is missing (a typo fails here, not there).
set -u
cd "$(dirname "$0")/.."
[ -d benches ] || cd ..   # run as .gl/gpu_verdict.sh: the project root is one up
QUICK=
[ "${1:-}" = --quick ] && QUICK=1
O=${OUT:-$(mktemp -d)}
mkdir -p "$O"
: >"$O/raw.jsonl"
HERE=$(dirname "$0")
TABLE=$HERE/verdict_table.py
[ -e "$TABLE" ] || TABLE=benches/verdict_table.py
if [ -x .gl/bin/lstm-wgpu ] && [ -z "$QUICK" ]; then
    BIN=${BIN:-.gl/bin/lstm-wgpu}
    for f in .gl/*.deb; do [ -e "$f" ] && dpkg -x "$f" /; done
    ldconfig 2>/dev/null
    export VK_DRIVER_FILES=${VK_DRIVER_FILES:-/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json}
    export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
    nvidia-smi -L 2>/dev/null | tee -a "$O/log"
else
    BIN=${BIN:-target/release/lstm-wgpu}
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
export LSTM_WGPU_TUNE_FILE=$O/wisdom.json
# PyTorch on CUDA where it has it, on the CPU where not, none without PyTorch (CI: our side
# only, the table then says which runs are missing)
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    TORCH_DEVICE=${TORCH_DEVICE:-cuda}
elif python3 -c 'import torch' 2>/dev/null; then
    TORCH_DEVICE=${TORCH_DEVICE:-cpu}
else
    TORCH_DEVICE=${TORCH_DEVICE:-none}
fi
torch() { [ "$TORCH_DEVICE" != none ] && timeout 300 python3 "$@" --device "$TORCH_DEVICE"; }
if [ -n "$QUICK" ]; then
    ITERS=${ITERS:-1}; BUDGET_S=${BUDGET_S:-1}; CASES=3
else
    ITERS=${ITERS:-20}; BUDGET_S=${BUDGET_S:-15}; CASES=20
fi

# record SECTION SIDE [N]: tags each JSON line of stdin (with the pair number N: ours and
# PyTorch's run of one shape share it) and appends it to raw.jsonl
record() {
    sed -n "s/^{/{\"section\":\"$1\",\"side\":\"$2\",\"pair\":${3:-0},/p" >>"$O/raw.jsonl"
}
step() { echo "== $*" | tee -a "$O/log"; }

step info
$BIN info 2>&1 | tee -a "$O/log" | head -3
$BIN info >/dev/null 2>&1 || { echo "no adapter: stopping" | tee -a "$O/log"; exit 3; }
step check
timeout 300 $BIN check --cases $CASES 2>&1 | tail -3 | tee -a "$O/log"

# "T B I H [L [bi]]": the forward benchmark shapes (issue 7's), tuned first
if [ -n "$QUICK" ]; then
    FORWARD=("8 1 16 32" "8 16 16 128" "4 4 8 64 2 bi")
    TRAIN=("--task step --seq 8 --batch 4 --input 8 --hidden 32"
        "--task sequence --seq 6 --batch 8 --input 4 --hidden 16 --out-features 3"
        "--task lm --seq 6 --batch 4 --input 8 --hidden 16 --layers 2 --vocab 32")
    STREAM=("1 16")
else
    FORWARD=("1024 1 512 512" "1024 1 1024 1024" "256 16 512 512" "256 64 512 512"
        "256 64 1024 1024" "1024 1 64 64" "256 64 64 64")
    TRAIN=("--task step --seq 256 --batch 16 --input 512 --hidden 512"
        "--task step --seq 256 --batch 64 --input 512 --hidden 512"
        "--task sequence --seq 50 --batch 64 --input 32 --hidden 128 --layers 2 --bidirectional --out-features 10"
        "--task lm --seq 35 --batch 20 --input 64 --hidden 128 --layers 2 --vocab 10000 --dropout 0.2"
        "--task lm --seq 64 --batch 64 --input 128 --hidden 1024 --layers 2 --vocab 256")
    STREAM=("1 512" "16 512")
fi
args_of() { # T B I H [L [bi]] -> bench flags
    set -- $1
    local a="--seq $1 --batch $2 --input $3 --hidden $4 --layers ${5:-1}"
    [ "${6:-}" = bi ] && a="$a --bidirectional"
    echo "$a"
}

step "tune (forward, then training), ${BUDGET_S} s a shape"
: >"$O/shapes.txt"
for s in "${FORWARD[@]}"; do
    set -- $s
    line="seq=$1 batch=$2 input=$3 hidden=$4 layers=${5:-1}"
    [ "${6:-}" = bi ] && line="$line bidirectional"
    echo "$line" >>"$O/shapes.txt"
done
for a in "${TRAIN[@]}"; do
    # the LSTM of each training benchmark, as `bench --train` builds it (I = embedding width)
    set -- $a
    declare -A f=([layers]=1)
    bidir=
    while [ $# -gt 0 ]; do
        case $1 in
            --bidirectional) bidir=" bidirectional"; shift ;;
            --seq|--batch|--input|--hidden|--layers) f[${1#--}]=$2; shift 2 ;;
            *) shift 2 ;;
        esac
    done
    echo "seq=${f[seq]} batch=${f[batch]} input=${f[input]} hidden=${f[hidden]} layers=${f[layers]}$bidir train" >>"$O/shapes.txt"
    unset f
done
timeout 900 $BIN tune --shapes "$O/shapes.txt" --budget-s "$BUDGET_S" --json \
    >"$O/tune.txt" 2>>"$O/log"
grep -v '^{' "$O/tune.txt" | tee -a "$O/log"
grep '^{' "$O/tune.txt" | record tune ours

step "forward beside PyTorch ($TORCH_DEVICE)"
n=0
for s in "${FORWARD[@]}"; do
    a=$(args_of "$s"); n=$((n + 1))
    timeout 300 $BIN bench $a --device gpu --iters $ITERS --warmup 3 --json 2>>"$O/log" | record forward ours $n
    torch benches/cudnn_baseline.py $a --iters $ITERS 2>>"$O/log" | record forward torch $n
done

step "training steps beside PyTorch ($TORCH_DEVICE)"
for a in "${TRAIN[@]}"; do
    n=$((n + 1))
    timeout 300 $BIN bench --train $a --device gpu --iters $ITERS --warmup 3 --json 2>>"$O/log" | record train ours $n
    torch benches/cudnn_baseline.py --train $a --iters $ITERS 2>>"$O/log" | record train torch $n
done

step "streaming beside PyTorch ($TORCH_DEVICE)"
for s in "${STREAM[@]}"; do
    set -- $s; n=$((n + 1))
    timeout 300 $BIN bench --stream --seq 1 --batch $1 --input $2 --hidden $2 --device gpu --iters $ITERS --json 2>>"$O/log" | record stream ours $n
    torch benches/stream_baseline.py --batch $1 --input $2 --hidden $2 --steps $((ITERS * 10)) 2>>"$O/log" | record stream torch $n
done

python3 "$TABLE" "$O/raw.jsonl" >"$O/verdict.md"
table=$?
cat "$O/verdict.md"
[ $table -eq 0 ] || { echo "some of our runs are missing: see $O/log"; exit 4; }
echo "results: $O (verdict.md, raw.jsonl, wisdom.json, log)"
