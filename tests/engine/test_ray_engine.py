"""The ray engine: same results as local, lost nodes and killed drivers, clear errors.

Ray here is loopback only: every node binds to 127.0.0.1, two-node clusters are Ray's own
``cluster_utils.Cluster``; tests stop only the Ray processes they started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from tests.helpers import evaluate_args, evaluate_cmd, wait_for_records

from slowfast_deploy.cli import main

assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # set by conftest, before ray
pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow


def evaluate(videos, model, out, *extra):
    return main(evaluate_args(videos, model, out, "--batchsize", "2", *extra))


def comparable(path):
    """Records without timings and node fields, as the engines must agree on them."""
    from slowfast_deploy.evaluation.results import read_records

    drop = {"timing_ms", "node", "model_node"}
    return [{k: v for k, v in r.items() if k not in drop} for r in read_records(path)]


def assert_identical(a, b):
    assert [r["key"] for r in a] == [r["key"] for r in b]
    assert [r["status"] for r in a] == [r["status"] for r in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x["scores"], y["scores"], atol=1e-5)
        assert {k: v for k, v in x.items() if k not in ("scores", "topk")} == {
            k: v for k, v in y.items() if k not in ("scores", "topk")
        }


@pytest.fixture(scope="module")
def local_reference(many_videos, tiny_onnx, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "local.jsonl"
    assert evaluate(many_videos, tiny_onnx, out) == 0
    return comparable(out)


def test_ray_equals_local(many_videos, tiny_onnx, local_reference, tmp_path):
    out = tmp_path / "ray.jsonl"
    assert evaluate(many_videos, tiny_onnx, out, "--engine", "ray", "--num-workers", "2") == 0
    assert_identical(comparable(out), local_reference)
    summary = json.loads((tmp_path / "ray.jsonl.summary.json").read_text())
    assert summary["engine"] == "ray" and summary["num_ok"] == 12
    import ray

    assert not ray.is_initialized()  # the embedded cluster is shut down with the run


def test_two_node_cluster_losing_its_worker_node(many_videos, tiny_onnx, local_reference, tmp_path):
    import ray
    from ray.cluster_utils import Cluster

    from slowfast_deploy.engine.base import EngineOptions
    from slowfast_deploy.engine.jobs import jobs_from_list
    from slowfast_deploy.evaluation.run import EvaluationRun
    from slowfast_deploy.runtime import ModelConfig

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 2, "node_ip_address": "127.0.0.1"},
    )
    try:
        worker = cluster.add_node(num_cpus=2, node_ip_address="127.0.0.1")
        ray.init(address=cluster.address)
        out = tmp_path / "lost.jsonl"
        run = EvaluationRun(
            jobs_from_list(many_videos, many_videos / "list.txt"),
            model=ModelConfig(str(tiny_onnx)),
            output=out,
            engine=EngineOptions(engine="ray", batchsize=2, num_workers=2),
        )
        removed = False
        with run:
            for n, _record in enumerate(run.records()):
                if n == 1 and not removed:
                    cluster.remove_node(worker)  # the node is lost mid-run
                    removed = True
            summary = run.finish()
        assert removed
        assert summary.num_ok == 12
        assert_identical(comparable(out), local_reference)
    finally:
        ray.shutdown()
        cluster.shutdown()


def ray_descendants(pid):
    return [p for p in psutil.Process(pid).children(recursive=True)]


def test_driver_killed_then_resumed_leaves_no_ray_process(
    many_videos, tiny_onnx, local_reference, tmp_path
):
    out = tmp_path / "killed.jsonl"
    cmd = evaluate_cmd(many_videos, tiny_onnx, out, "--batchsize", "2", "--engine", "ray")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_records(proc, out, 2)
    children = ray_descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    _, alive = psutil.wait_procs(children, timeout=60)
    assert not alive, f"Ray processes left behind: {[p.cmdline()[:2] for p in alive]}"
    done_before = out.read_text().count("\n") - 1
    assert 0 < done_before < 12
    assert subprocess.run(cmd, capture_output=True, timeout=600).returncode == 0
    assert_identical(comparable(out), local_reference)


def test_unreachable_address_fails_fast(many_videos, tiny_onnx, tmp_path, capsys):
    t0 = time.monotonic()
    code = evaluate(
        many_videos,
        tiny_onnx,
        tmp_path / "r.jsonl",
        "--engine",
        "ray",
        "--ray-address",
        "127.0.0.1:9",
    )
    err = capsys.readouterr().err
    assert code == 1 and time.monotonic() - t0 < 20
    assert "127.0.0.1:9" in err and len(err.strip().splitlines()) == 1


def test_more_than_the_cluster_has_is_a_clear_error(many_videos, tiny_onnx, tmp_path, capsys):
    code = evaluate(
        many_videos, tiny_onnx, tmp_path / "r.jsonl", "--engine", "ray", "--model-actors", "9"
    )
    err = capsys.readouterr().err
    assert code == 1 and "the Ray cluster has" in err and "--model-actors" in err


def test_ray_missing_names_the_extra(many_videos, tiny_onnx, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    code = evaluate(many_videos, tiny_onnx, tmp_path / "r.jsonl", "--engine", "ray")
    assert code == 1 and "slowfast-deploy[ray]" in capsys.readouterr().err


def test_ray_address_in_the_environment_leaves_local_alone(
    many_videos, tiny_onnx, local_reference, tmp_path, monkeypatch
):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    out = tmp_path / "local.jsonl"
    assert evaluate(many_videos, tiny_onnx, out, "--num_workers", "1") == 0
    assert_identical(comparable(out), local_reference)


def test_ctrl_c_under_ray_exits_130_and_keeps_results(many_videos, tiny_onnx, tmp_path):
    out = tmp_path / "int.jsonl"
    cmd = evaluate_cmd(many_videos, tiny_onnx, out, "--engine", "ray")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for_records(proc, out, 2)
    children = ray_descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "rerun the same command to resume" in err
    kept = out.read_text().count("\n") - 1
    assert kept >= 2
    _, alive = psutil.wait_procs(children, timeout=60)
    assert not alive


def test_predict_and_preprocess_on_ray_equal_local(many_videos, tiny_onnx, tmp_path, capsys):
    videos = [str(many_videos / f"v{i:02d}.mp4") for i in range(4)]
    outputs = {}
    for engine in ("local", "ray"):
        assert (
            main(
                [
                    "predict",
                    *videos,
                    "--model",
                    str(tiny_onnx),
                    "--format",
                    "json",
                    "--engine",
                    engine,
                    "--num-workers",
                    "2",
                ]
            )
            == 0
        )
        outputs[engine] = json.loads(capsys.readouterr().out)
    assert [r["video"] for r in outputs["ray"]] == videos
    for a, b in zip(outputs["local"], outputs["ray"], strict=True):
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-5)
    lines = "".join(f"v{i:02d}.mp4 {i}\n" for i in range(4))
    (tmp_path / "list.txt").write_text(lines)
    for engine in ("local", "ray"):
        assert (
            main(
                [
                    "-q",
                    "preprocess",
                    "--video-dir",
                    str(many_videos),
                    "--ann-file",
                    str(tmp_path / "list.txt"),
                    "--save-dir",
                    str(tmp_path / engine),
                    "--engine",
                    engine,
                ]
            )
            == 0
        )
    for i in range(4):
        local = (tmp_path / "local" / "bin" / f"{i}.bin").read_bytes()
        assert (tmp_path / "ray" / "bin" / f"{i}.bin").read_bytes() == local


def test_python_api_equals_the_cli(many_videos, tiny_onnx, tmp_path):
    """``sd.evaluate(..., engine="ray")`` and ``evaluate --engine ray``, both on their
    defaults: the same summary (timings and the machine aside) and the same records."""
    import slowfast_deploy as sd

    cli_out, api_out = tmp_path / "cli.jsonl", tmp_path / "api.jsonl"
    assert main(evaluate_args(many_videos, tiny_onnx, cli_out, "--engine", "ray")) == 0
    summary = sd.evaluate(
        many_videos, many_videos / "list.txt", tiny_onnx, output=api_out, engine="ray"
    ).to_dict()
    cli_summary = json.loads((tmp_path / "cli.jsonl.summary.json").read_text())
    assert summary == json.loads((tmp_path / "api.jsonl.summary.json").read_text())

    def stable(s):  # node ids are new in every Ray session: only their counts compare
        nodes = sorted(s["videos_per_node"].values())
        return {
            k: v for k, v in s.items() if k not in ("this_run", "cpu", "videos_per_node")
        }, nodes

    assert stable(summary) == stable(cli_summary)
    assert summary["engine"] == "ray" and summary["num_ok"] == 12
    assert_identical(comparable(api_out), comparable(cli_out))
