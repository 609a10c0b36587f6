#!/usr/bin/env bash
# Build the virtualenv that runs a real Triton Inference Server on CPU for the triton
# adapter's tests and benchmarks: nvidia-pytriton ships the tritonserver binary and its
# python backend. The wheel links Debian's libpython3.11, so the venv must come from
# Debian's /usr/bin/python3.11 (a pyenv-built Python cannot load the backend stub).
# The server tree is laid out as PyTriton does at run time: the binaries without the
# per-version stubs, plus the stub of this Python in backends/python.
# Usage: scripts/build_triton_venv.sh [VENV_DIR]   (default .triton-venv)
set -euo pipefail
VENV="${1:-.triton-venv}"
PY=/usr/bin/python3.11
if [ ! -x "$PY" ]; then
    echo "build_triton_venv: $PY is missing (apt-get install python3.11 python3.11-venv)" >&2
    exit 2
fi
if [ -x "$VENV/tritonserver/bin/tritonserver" ] && [ -f "$VENV/.built" ]; then
    exit 0
fi
"$PY" -m venv "$VENV"
# torch is pinned like the project's own (an open range pulls a CUDA build); the model
# behind the python backend is a small PyTorch module.
"$VENV/bin/python" -m pip install --quiet "nvidia-pytriton>=0.7,<0.8" "torch==2.13.0"
SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "$VENV/tritonserver"
cp -r "$SITE/pytriton/tritonserver" "$VENV/tritonserver"
rm -rf "$VENV/tritonserver/python_backend_stubs"
cp "$SITE/pytriton/tritonserver/python_backend_stubs/3.11/triton_python_backend_stub" \
    "$VENV/tritonserver/backends/python/"
ln -sfn "$SITE/nvidia_pytriton.libs" "$VENV/tritonserver/libs"
touch "$VENV/.built"
echo "triton server ready: $VENV/tritonserver/bin/tritonserver"
