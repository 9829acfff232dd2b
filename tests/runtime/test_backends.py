"""Backends: golden parity per runtime, the torch-free path, bench output, bad models."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from slowfast_deploy.cli import main

CHECKPOINT = "slowfast_r50_8x8x1_random_seed0.pth"


@pytest.fixture(scope="module")
def golden_onnx(golden, tmp_path_factory):
    pytest.importorskip("torch")
    from slowfast_deploy.export.onnx import export_onnx

    out = tmp_path_factory.mktemp("golden_onnx") / "slowfast.onnx"
    export_onnx(golden / CHECKPOINT, out, softmax=True)
    return out


@pytest.mark.golden
@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_fp32_backends_match_golden_scores(golden, golden_onnx, backend):
    pytest.importorskip(backend)
    from slowfast_deploy.engine.decode import load_views
    from slowfast_deploy.engine.scoring import score_views
    from slowfast_deploy.runtime import open_backend

    model = open_backend(golden_onnx, backend=backend, threads=2)
    assert model.info.precision == "fp32"
    entries = json.loads((golden / "manifest.json").read_text())
    for entry in entries:
        ref = np.load(golden / "reference" / f"{entry['video']}.npz")
        views = load_views(golden / "videos" / entry["video"])
        scores = score_views(model, views[None])[0]
        np.testing.assert_allclose(scores, ref["scores"], atol=1e-4, rtol=0, err_msg=entry["video"])
        assert int(scores.argmax()) == entry["top1"]
        assert set(np.argsort(scores)[-5:]) == set(entry["top5"])


def test_onnx_backends_work_without_torch(tiny_onnx, video_dir, tmp_path):
    """Import-block torch in a fresh interpreter; ORT and OpenVINO must still run end to end."""
    script = textwrap.dedent(f"""
        import sys, json, importlib.abc

        class BlockTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
                return None

        sys.meta_path.insert(0, BlockTorch())
        from slowfast_deploy.cli import main
        from slowfast_deploy.errors import BackendUnavailableError
        from slowfast_deploy.runtime import open_backend
        for backend in ("onnxruntime", "openvino"):
            code = main(["predict", {str(video_dir / "short.mp4")!r}, "--model",
                         {str(tiny_onnx)!r}, "--backend", backend, "--format", "jsonl"])
            assert code == 0, code
        try:
            open_backend({str(tmp_path / "x.pth")!r})
        except BackendUnavailableError as err:
            print("PTH:", err)
        print("TORCH_LOADED:", "torch" in sys.modules)
    """)
    (tmp_path / "x.pth").write_bytes(b"anything")
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    predictions = [json.loads(line) for line in lines if line.startswith("{")]
    assert len(predictions) == 2
    assert all(p["status"] == "ok" for p in predictions)
    np.testing.assert_allclose(
        predictions[0]["topk"][0]["score"], predictions[1]["topk"][0]["score"], atol=1e-4
    )
    assert "TORCH_LOADED: False" in lines
    assert any(
        line.startswith("PTH:") and "pip install 'slowfast-deploy[torch]'" in line for line in lines
    )


def test_bench_prints_reference_lines_table_and_summary(
    tiny_onnx, tiny_checkpoint, tmp_path, capsys
):
    summary = tmp_path / "bench.json"
    assert (
        main(
            [
                "bench",
                "--model",
                f"{tiny_onnx}@onnxruntime",
                "--compare",
                f"{tiny_onnx}@openvino:fp32",
                "--batchsize",
                "1,2",
                "--loop",
                "2",
                "--warmup",
                "1",
                "--summary",
                str(summary),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert out.count("[INFO] throughput 1000*batchsize.mean(1)/compute_time.mean(") == 2
    assert out.count("[INFO] throughput 1000*batchsize.mean(2)/compute_time.mean(") == 2
    assert "percentile(99%) = " in out
    table = [line for line in out.splitlines() if " | " in line]
    assert table[0].split(" | ")[0].strip() == "model" and len(table) == 5
    rows = json.loads(summary.read_text())["rows"]
    assert [(r["backend"], r["batchsize"]) for r in rows] == [
        ("onnxruntime", 1),
        ("openvino", 1),
        ("onnxruntime", 2),
        ("openvino", 2),
    ]
    for r in rows:
        assert r["throughput"] == pytest.approx(1000 * r["batchsize"] / r["latency"]["mean_ms"])
        assert r["speedup"] is None  # no PyTorch model in this run


def test_bench_speedup_is_relative_to_the_pytorch_model():
    """Ratios come from the same alternating run; checked on fake runners with known cost."""
    import time

    from slowfast_deploy.runtime.benchmark import bench_alternating

    def sleeper(ms):
        return lambda video: time.sleep(ms / 1000)

    rows = bench_alternating(
        [
            ("a.pth", "torch", "fp32", "", sleeper(20)),
            ("b.xml", "openvino", "fp32", "", sleeper(5)),
        ],
        batchsizes=[1],
        make_input=lambda b: np.zeros(b),
        loop=5,
        warmup=1,
        baseline=0,
    )
    assert rows[0].speedup == 1.0
    assert rows[1].speedup > 1.5  # 20 ms vs 5 ms calls, with scheduling noise
    assert rows[1].speedup < 5


def test_unavailable_precision_says_what_is_available(tiny_onnx):
    from slowfast_deploy.errors import BackendUnavailableError
    from slowfast_deploy.runtime import open_backend

    with pytest.raises(BackendUnavailableError, match="onnxruntime' runs fp32 models only"):
        open_backend(tiny_onnx, precision="bf16")
    with pytest.raises(
        BackendUnavailableError,
        match=r"provider CUDAExecutionProvider is not available \(available: .*CPU",
    ):
        open_backend(tiny_onnx, device="cuda")
