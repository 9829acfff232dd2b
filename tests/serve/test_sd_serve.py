"""``slowfast_deploy.serve.serve(model)`` from a plain script: the CLI's server, the same
answers as ``slowfast-deploy serve``, and a clean stop (no thread or process left)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from tests.serve.helpers import free_port, httpx

pytest.importorskip("psutil")

# the requests both servers answer: a video's prediction, the info, a tensor
ASK = """
def ask(url):
    video = open(VIDEO, "rb").read()
    tensor = {"inputs": [{"name": "video", "datatype": "FP32", "shape": [1, 1, 3, 32, 4, 4],
                          "data": [0.5] * 1536}]}
    return {
        "predict": httpx.post(url + "/v1/predict", params={"topk": 3},
                              files={"video": ("short.mp4", video)}, timeout=120).text,
        "info": httpx.get(url + "/v1/info", timeout=60).text,
        "infer": httpx.post(url + "/v2/models/tiny/infer", json=tensor, timeout=60).text,
    }
"""

SCRIPT = """
import json, sys, threading
import httpx, psutil
import slowfast_deploy as sd
from slowfast_deploy.serve import serve

MODEL, VIDEO = sys.argv[1], sys.argv[2]
{ask}
model = sd.open_model(MODEL)
with serve(model, port=0) as server:
    answers = ask(server.url)
    answers["url"] = server.url
model.close()
answers["threads"] = [t.name for t in threading.enumerate()]
answers["children"] = [p.pid for p in psutil.Process().children(recursive=True)]
print(json.dumps(answers))
"""


def _cli_answers(model: str, video: str, tmp_path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    cmd = [sys.executable, "-m", "slowfast_deploy", "-q", "serve", "--model", model,
           "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:  # the readiness probe: the server says when the model is loaded
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the CLI server did not become ready"
            time.sleep(0.1)  # between probes
        scope: dict[str, object] = {"httpx": httpx, "VIDEO": video}
        exec(textwrap.dedent(ASK), scope)
        return scope["ask"](url)  # type: ignore[operator,no-any-return]
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def test_serve_from_a_script_equals_the_cli(tiny_onnx, video_dir, tmp_path):
    video = str(video_dir / "short.mp4")
    script = tmp_path / "serve_it.py"
    script.write_text(SCRIPT.format(ask=ASK))
    done = subprocess.run(
        [sys.executable, str(script), str(tiny_onnx), video],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["url"].startswith("http://127.0.0.1:")
    assert got["threads"] == ["MainThread"], got["threads"]  # stopped: nothing left running
    assert got["children"] == [], got["children"]
    want = _cli_answers(str(tiny_onnx), video, tmp_path)
    for key in ("predict", "info", "infer"):
        assert got[key] == want[key], key
    [record] = json.loads(got["predict"])
    assert record["status"] == "ok" and len(record["topk"]) == 3
