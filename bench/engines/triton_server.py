"""Start the Triton server that scripts/build_triton_venv.sh builds, on free loopback
ports, with the model repository of the triton adapter's tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from controlplane.engines.process.haproxy import free_port

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("CP_TRITON_VENV", ROOT / ".triton-venv"))
MODELS = ROOT / "tests" / "fixtures" / "triton" / "models"


@contextmanager
def triton(model: str = "tiny") -> Iterator[tuple[str, str]]:
    """Yields ``(model url, metrics url)`` once the model is ready."""
    server = VENV / "tritonserver"
    if not (server / "bin" / "tritonserver").exists():
        raise SystemExit(f"no Triton at {server}: run scripts/build_triton_venv.sh")
    work = Path(tempfile.mkdtemp(prefix="bench-triton-"))
    shutil.copytree(MODELS, work / "models")
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "LD_LIBRARY_PATH": str(server / "libs"),
        "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}",
    }
    args = [
        str(server / "bin" / "tritonserver"),
        f"--model-repository={work / 'models'}",
        "--model-control-mode=explicit",
        f"--load-model={model}",
        f"--backend-directory={server / 'backends'}",
        "--http-address=127.0.0.1",
        f"--http-port={http_port}",
        "--grpc-address=127.0.0.1",
        f"--grpc-port={grpc_port}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={metrics_port}",
        "--allow-gpu-metrics=false",
        "--exit-timeout-secs=3",
    ]
    with (work / "triton.log").open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/v2/models/{model}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("triton did not start; see " + str(work / "triton.log"))
            time.sleep(0.2)
        yield f"{base}/v2/models/{model}", f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
