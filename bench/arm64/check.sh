#!/usr/bin/env bash
# The ARM64 check (issue 24): the wheel built from this checkout, installed in a Debian bookworm arm64 userland
# run by qemu-user (binfmt_misc) in a chroot, must score like x86-64 and its CLI must work.
#
#   bash bench/arm64/check.sh          (as root; CI runs it from .ci/run)
#
# 1. builds the userland once with debootstrap (two stages) under $EDGE_INFER_ARM64_ROOT (default .arm64/root,
#    gitignored); reused while its marker file (written last) is there, rebuilt otherwise;
# 2. builds the wheel on the host (pip wheel . --no-deps) and installs it with the serve extra in a venv in
#    the chroot (numpy and onnxruntime pinned to the host's versions; aarch64 wheels from the package index);
# 3. scores >= 2,000 texts (IMDB test reviews + short test/dev texts of ../shared/data/multi, written to temp
#    files only) with every model in models/, fp32 and int8, in the chroot and on the host (bench/arm64/compare.py);
# 4. runs edge-infer predict (cold start, a few times), evaluate and serve (one request) in the chroot;
# 5. prints the table and writes it to bench/results/arm64.md.
# Exit 0 on pass, 1 on a failure; exit 0 with one line "arm64 check skipped: <reason>" where the machine does
# not allow it (not root, no apt/debootstrap, binfmt_misc not mountable, no network to the mirror, no data).
# /sys is never mounted in the chroot: with it, `import onnxruntime` crashes under emulation.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
ROOT=${EDGE_INFER_ARM64_ROOT:-$REPO/.arm64/root}
DATA=${EDGE_INFER_DATA_DIR:-$REPO/../shared/data}
IMDB=${ARM64_IMDB:-600}    # long reviews (up to 600 tokens): the slow part under emulation
SHORT=${ARM64_SHORT:-1400} # short texts: tweets, SST-2, Amazon, Yelp
REPEATS=${ARM64_REPEATS:-5}
SUITE=bookworm
MARKER=$ROOT/.edge-infer-arm64-complete   # written last: the userland is complete
OWNED=$ROOT/.edge-infer-arm64-root        # written first: this folder is ours to delete
VENV=/opt/edge-infer-venv                 # inside the chroot
CWORK=/tmp/edge-infer-arm64               # inside the chroot: wheel, models, texts (removed at exit)
REPORT=${ARM64_REPORT:-bench/results/arm64.md}

skip() { echo "arm64 check skipped: $*"; exit 0; }
fail() { echo "arm64 check FAILED: $*"; exit 1; }
now() { date +%s; }
START=$(now)

# ---------------------------------------------------------------- can this machine do it?
[ "$(id -u)" = 0 ] || skip "not root (debootstrap, chroot and binfmt_misc need root)"
[ "$(uname -m)" = x86_64 ] || skip "the host is $(uname -m), not x86-64 (this check emulates ARM64 on x86-64)"
[ -f "$DATA/aclImdb_labeled.tar.gz" ] && [ -d "$DATA/multi" ] || skip "no test data in $DATA"
if ! command -v debootstrap >/dev/null || ! command -v update-binfmts >/dev/null \
        || ! command -v qemu-aarch64-static >/dev/null; then
    command -v apt-get >/dev/null || skip "apt-get not available to install qemu-user-static binfmt-support debootstrap"
    (apt-get update -qq && apt-get install -y -qq qemu-user-static binfmt-support debootstrap) >/dev/null 2>&1 \
        || skip "apt-get could not install qemu-user-static binfmt-support debootstrap"
fi
if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || skip "binfmt_misc cannot be mounted"
fi
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || skip "update-binfmts --enable qemu-aarch64 failed"
grep -qx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 2>/dev/null || skip "no qemu-aarch64 binfmt_misc entry"
# The Debian mirror apt already uses (deb822 .sources or one-line sources.list).
MIRROR=${EDGE_INFER_ARM64_MIRROR:-$({ grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '{for (i = 2; i <= NF; i++) print $i}'
    grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}'; } | grep -E '/debian/?$' | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
"$PYTHON" -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)" \
    "${MIRROR%/}/dists/$SUITE/Release" 2>/dev/null || skip "no network to the mirror $MIRROR"

HOST_TMP=$(mktemp -d)
STEPS=$HOST_TMP/steps.txt
CHECKS=$HOST_TMP/checks.txt
: >"$STEPS"; : >"$CHECKS"
cleanup() {
    rm -rf "$HOST_TMP" "$ROOT$CWORK"
    mountpoint -q "$ROOT/proc" && umount "$ROOT/proc"
}
trap cleanup EXIT
step() { echo "$1: $2 s" >>"$STEPS"; echo "== $1: $2 s"; }
check() {  # check DESCRIPTION COMMAND...: record pass/FAIL
    if "${@:2}"; then printf 'pass\t%s\n' "$1" >>"$CHECKS"; else printf 'FAIL\t%s\n' "$1" >>"$CHECKS"; fi
}
in_chroot() {  # a clean environment: the host's SSL_CERT_FILE etc. point at files the chroot lacks
    chroot "$ROOT" /usr/bin/env -i PATH=$VENV/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        PIP_CERT=/etc/ssl/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 "$@"
}
quiet_ort() { grep -v -E 'cpuinfo|cpuid_info' >&2; }  # ORT's CPU-detection warnings without /sys (harmless)

# ---------------------------------------------------------------- 1. the userland, once
t=$(now)
if [ -f "$MARKER" ]; then
    step "ARM64 userland reused ($ROOT, built $(cat "$MARKER"))" 0
else
    if [ -e "$ROOT" ]; then
        [ -f "$OWNED" ] || fail "$ROOT exists and is not an ARM64 root this script started; remove it or set EDGE_INFER_ARM64_ROOT"
        mountpoint -q "$ROOT/proc" && umount "$ROOT/proc"
        rm -rf "$ROOT"
    fi
    mkdir -p "$ROOT" && touch "$OWNED"
    echo "== debootstrap --arch=arm64 $SUITE from $MIRROR (first stage, then the second under emulation)"
    timeout 1200 debootstrap --arch=arm64 --foreign --variant=minbase \
        --include=python3,python3-venv,ca-certificates "$SUITE" "$ROOT" "$MIRROR" >"$HOST_TMP/debootstrap.log" 2>&1 \
        || { tail -20 "$HOST_TMP/debootstrap.log"; fail "debootstrap (first stage)"; }
    chroot "$ROOT" /bin/true 2>/dev/null || skip "ARM64 binaries do not run here (qemu-aarch64 binfmt_misc entry)"
    timeout 1800 chroot "$ROOT" /debootstrap/debootstrap --second-stage >>"$HOST_TMP/debootstrap.log" 2>&1 \
        || { tail -20 "$HOST_TMP/debootstrap.log"; fail "debootstrap (second stage)"; }
    mountpoint -q "$ROOT/proc" && umount "$ROOT/proc"  # in case the second stage left it mounted
    date -u +"%Y-%m-%d %H:%M UTC from $MIRROR" >"$MARKER"
    step "debootstrap (both stages, $SUITE arm64)" $(($(now) - t))
fi

# ---------------------------------------------------------------- 2. the wheel, in a venv in the chroot
t=$(now)
mkdir -p "$HOST_TMP/wheel"
"$PYTHON" -m pip wheel . --no-deps -q -w "$HOST_TMP/wheel" >/dev/null 2>&1 || fail "pip wheel . --no-deps"
WHEEL=$(ls "$HOST_TMP"/wheel/edge_infer-*.whl)
step "wheel built on the host ($(basename "$WHEEL"))" $(($(now) - t))
read -r NUMPY ORT < <("$PYTHON" -c "import numpy, onnxruntime; print(numpy.__version__, onnxruntime.__version__)") \
    || fail "the host Python ($PYTHON) lacks numpy or onnxruntime"
t=$(now)
mkdir -p "$ROOT$CWORK"
cp "$WHEEL" bench/arm64/compare.py examples/review.txt "$ROOT$CWORK/"
cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/host-ca.crt"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc" || fail "mount proc in the chroot"
in_chroot sh -c "rm -rf $VENV && python3 -m venv $VENV && timeout 1200 $VENV/bin/pip install -q \
    '$CWORK/$(basename "$WHEEL")[serve]' numpy==$NUMPY onnxruntime==$ORT" || fail "pip install in the chroot"
step "pip install of the wheel [serve] in the chroot (numpy $NUMPY, onnxruntime $ORT)" $(($(now) - t))

# ---------------------------------------------------------------- 3. every model, fp32 and int8, both sides
"$PYTHON" bench/arm64/compare.py texts --data "$DATA" --imdb "$IMDB" --short "$SHORT" \
    --out "$ROOT$CWORK/texts.jsonl" --labelled-out "$ROOT$CWORK/labelled.jsonl" | tee "$HOST_TMP/texts.txt" \
    || fail "writing the texts"
"$PYTHON" bench/arm64/compare.py models --repo . --out "$ROOT$CWORK/models" >/dev/null || fail "copying the models"
t=$(now)
PYTHONPATH=$REPO "$PYTHON" bench/arm64/compare.py score --models "$ROOT$CWORK/models" \
    --texts "$ROOT$CWORK/texts.jsonl" --out "$HOST_TMP/host.json" >/dev/null || fail "scoring on the host"
step "scoring on the host (x86-64)" $(($(now) - t))
t=$(now)
PYTHONPATH=$REPO "$PYTHON" bench/arm64/compare.py threads --models "$ROOT$CWORK/models" \
    --texts "$ROOT$CWORK/texts.jsonl" | tee "$HOST_TMP/threads.txt" || fail "threads 1 vs 2 on the host"
step "the same, 1 against 2 ONNX Runtime threads (x86-64)" $(($(now) - t))
t=$(now)
timeout 1800 chroot "$ROOT" /usr/bin/env -i PATH=$VENV/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    python "$CWORK/compare.py" score --models "$CWORK/models" --texts "$CWORK/texts.jsonl" \
    --out "$CWORK/arm.json" 2> >(quiet_ort) || fail "scoring in the chroot"
step "scoring in the chroot (ARM64, emulated, $(nproc) processes)" $(($(now) - t))

# ---------------------------------------------------------------- 4, 5. the CLI in the chroot, cold start
t=$(now)
HOST_CLI=$(dirname "$PYTHON")/edge-infer
[ -x "$HOST_CLI" ] || HOST_CLI="$PYTHON -m edge_infer"
COLD_HOST=$(PYTHONPATH=$REPO "$PYTHON" bench/arm64/compare.py coldstart --repeats "$REPEATS" -- \
    env PYTHONPATH="$REPO" $HOST_CLI predict examples/review.txt)
COLD_ARM=$("$PYTHON" bench/arm64/compare.py coldstart --repeats "$REPEATS" -- chroot "$ROOT" /usr/bin/env -i \
    PATH=$VENV/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 edge-infer predict "$CWORK/review.txt" 2> >(quiet_ort))
echo "cold start, host: $COLD_HOST"
echo "cold start, ARM64 (emulated): $COLD_ARM"
same_prediction() {  # "label score" of the last predict run equal on both sides
    [ "$(echo "$COLD_HOST" | sed -n 's/.*output: \([a-z]* [0-9.]*\) .*/\1/p')" = \
      "$(echo "$COLD_ARM" | sed -n 's/.*output: \([a-z]* [0-9.]*\) .*/\1/p')" ] && [[ $COLD_ARM == *output:* ]]
}
check "edge-infer predict examples/review.txt: same label and score as x86-64" same_prediction
evaluate_same() {  # accuracy on the small labelled file equal on both sides
    local host arm
    host=$(PYTHONPATH=$REPO $HOST_CLI evaluate --jsonl "$ROOT$CWORK/labelled.jsonl" --format json) || return 1
    arm=$(in_chroot edge-infer evaluate --jsonl "$CWORK/labelled.jsonl" --format json 2> >(quiet_ort)) || return 1
    "$PYTHON" -c 'import json, sys; a, b = (json.loads(x)["accuracy"] for x in sys.argv[1:]); print(f"evaluate: \
accuracy {b} (x86-64 {a})"); sys.exit(a != b)' "$host" "$arm"
}
check "edge-infer evaluate --jsonl ($(wc -l <"$ROOT$CWORK/labelled.jsonl") labelled reviews): exit 0, accuracy equal \
to x86-64's" evaluate_same
PORT=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
check "edge-infer serve on 127.0.0.1: one POST /v1/predict answered, stopped with SIGTERM, exit 0" \
    timeout 300 chroot "$ROOT" /usr/bin/env -i PATH=$VENV/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    python "$CWORK/compare.py" serve --port "$PORT" --cli "$VENV/bin/edge-infer" 2> >(quiet_ort)
step "CLI checks in the chroot (predict x$REPEATS on each side, evaluate, serve)" $(($(now) - t))
step "total" $(($(now) - START))

# ---------------------------------------------------------------- 6. the table and the report
VERSIONS_OK=$(in_chroot python -c "import platform; print(platform.machine())")
[ "$VERSIONS_OK" = aarch64 ] || fail "the chroot's Python reports $VERSIONS_OK, not aarch64"
"$PYTHON" bench/arm64/compare.py compare --host "$HOST_TMP/host.json" --arm "$ROOT$CWORK/arm.json" \
    --checks "$CHECKS" --steps "$STEPS" --threads "$HOST_TMP/threads.txt" --out-md "$REPORT" \
    --command "bash bench/arm64/check.sh" \
    --date "$(date -u +'%Y-%m-%d %H:%M UTC')" \
    --cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores" \
    --texts-line "$(cat "$HOST_TMP/texts.txt")" --cold-arm "$COLD_ARM" --cold-host "$COLD_HOST"
