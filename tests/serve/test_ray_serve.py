"""The same app on Ray Serve: two replicas on loopback, one killed mid-load, no request lost
after one retry (Ray Serve replaces the replica; the other keeps answering)."""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from tests.serve.helpers import free_port, httpx

pytest.importorskip("ray.serve")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow


def _replicas(root: psutil.Process) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any("ServeReplica:slowfast:SlowFast" in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


def test_two_replicas_one_killed_mid_load(tiny_onnx, tmp_path):
    port = free_port()
    cmd = [sys.executable, "-m", "slowfast_deploy", "serve", "--engine", "ray",
           "--replicas", "2", "--model", str(tiny_onnx), "--port", str(port)]  # fmt: skip
    log = open(tmp_path / "ray_serve.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while len(_replicas(psutil.Process(proc.pid))) < 2 or not _ready(url):
            assert proc.poll() is None, (tmp_path / "ray_serve.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "Ray Serve did not start"
            time.sleep(1)
        video = np.random.default_rng(0).standard_normal((1, 1, 3, 32, 8, 8), dtype=np.float32)
        body = {"inputs": [{"name": "video", "datatype": "FP32", "shape": list(video.shape),
                            "data": video.ravel().tolist()}]}  # fmt: skip
        retries = []
        answered = threading.Semaphore(0)  # released per request answered 200

        def one(i: int) -> int:
            status = 0
            for _ in range(2):  # one retry
                try:
                    status = httpx.post(
                        f"{url}/v2/models/tiny/infer", json=body, timeout=60
                    ).status_code
                except httpx.HTTPError:
                    status = -1
                if status == 200:
                    answered.release()
                    return status
                retries.append(i)
                time.sleep(1)  # a client's back-off before its retry
            return status

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(one, i) for i in range(40)]
            for _ in range(8):  # under load: 8 requests answered, the rest in flight
                assert answered.acquire(timeout=120), "no answers under load"
            victim = _replicas(psutil.Process(proc.pid))[0]
            victim.kill()
            codes = [f.result() for f in futures]
        assert codes == [200] * 40, (codes, retries)
        assert _ready(url)  # still serving after the kill
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
