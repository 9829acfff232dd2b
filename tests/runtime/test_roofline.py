"""The roofline in ``bench``: the CPU's peak table, MACs counted from the graph, the keys."""

from __future__ import annotations

import json

import pytest
from tests.helpers import tiny_spec

from slowfast_deploy.cli import main
from slowfast_deploy.runtime.roofline import count_macs, read_cpu

XEON_AMX = """vendor_id : GenuineIntel
cpu family : 6
model name : Intel(R) Xeon(R) Platinum 8481C CPU @ 2.60GHz
cpu MHz : 2600.000
flags : fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
"""
EPYC_ZEN4 = """vendor_id : AuthenticAMD
cpu family : 25
model name : AMD EPYC
cpu MHz : 2596.152
flags : fpu avx2 avx512f avx512_vnni avx512_bf16
"""
EPYC_ZEN5 = EPYC_ZEN4.replace("cpu family : 25", "cpu family : 26")
EPYC_AVX2 = """vendor_id : AuthenticAMD
cpu family : 23
model name : AMD EPYC 7B12
cpu MHz : 2250.000
flags : fpu avx avx2 fma
"""


@pytest.mark.parametrize(
    ("text", "isa", "clock_ghz", "source", "tmac_per_s"),
    [
        # 2 cores x MACs per cycle x clock: fp32, bf16, int8
        (XEON_AMX, "intel/amx", 2.6, "model name", (0.1664, 2.6624, 5.3248)),
        (EPYC_ZEN4, "zen4/avx512", 2.596152, "cpu MHz", (0.08308, 0.16615, 0.33231)),
        (EPYC_ZEN5, "zen5/avx512", 2.596152, "cpu MHz", (0.16615, 0.33231, 0.66462)),
        (EPYC_AVX2, "any/avx2", 2.25, "cpu MHz", (0.072, 0.072, 0.144)),
    ],
)
def test_nominal_peak_is_cores_times_macs_per_cycle_times_clock(
    text, isa, clock_ghz, source, tmac_per_s
):
    cpu = read_cpu(text, cores=2)
    assert f"{cpu.family}/{cpu.isa}" == isa
    assert cpu.clock_hz == pytest.approx(clock_ghz * 1e9)
    assert cpu.clock_source == source
    got = tuple(cpu.nominal(p, 2) / 1e12 for p in ("fp32", "bf16", "int8"))
    assert got == pytest.approx(tmac_per_s, rel=1e-4)
    assert cpu.nominal("fp32", 1) == pytest.approx(cpu.nominal("fp32", 2) / 2)


def test_macs_from_the_onnx_graph_equal_the_networks_own_layers(tiny_onnx):
    """OpenVINO's graph (Convolution, MatMul) and PyTorch's Conv3d/Linear count the same."""
    spec = tiny_spec()
    from_graph = count_macs(tiny_onnx, spec=spec)
    from_torch = count_macs("tiny.pth", spec=spec)
    assert from_graph == from_torch > 0


@pytest.mark.golden
def test_r50_is_50_3_gmac_per_clip(golden):
    """The published 65.7 G at 256x256 is 50.3 G at 224x224: (224/256)^2 (issue 23)."""
    macs = count_macs(golden / "slowfast_r50_8x8x1_random_seed0.pth")
    assert macs == pytest.approx(65.7e9 * (224 / 256) ** 2, rel=0.005)


def test_bench_json_carries_the_roofline_per_model(tiny_onnx, tmp_path, capsys):
    summary = tmp_path / "bench.json"
    argv = ["bench", "--model", f"{tiny_onnx}@openvino:fp32", "--compare", f"{tiny_onnx}"]
    argv += ["--loop", "2", "--warmup", "1", "--threads", "1", "--per-layer"]
    assert main([*argv, "--summary", str(summary)]) == 0
    out = capsys.readouterr().out
    data = json.loads(summary.read_text())
    macs = count_macs(tiny_onnx)
    for row in data["rows"]:
        assert row["macs_per_clip"] == macs
        assert row["mac_per_s"] == pytest.approx(row["throughput"] * macs)
        assert row["peak_nominal_mac_per_s"] == pytest.approx(
            read_cpu().nominal(row["precision"], 1)
        )
        assert row["fraction_of_nominal"] == pytest.approx(
            row["mac_per_s"] / row["peak_nominal_mac_per_s"]
        )
    openvino_row, ort_row = data["rows"]
    assert openvino_row["peak_measured_mac_per_s"] > 0
    assert openvino_row["fraction_of_measured"] == pytest.approx(
        openvino_row["mac_per_s"] / openvino_row["peak_measured_mac_per_s"]
    )
    assert ort_row["peak_measured_mac_per_s"] is None  # no probe through ONNX Runtime
    assert "GMAC/clip" in out and "nominal fp32" in out
    layers = out.split("slowest layers of ")[1].splitlines()[1:11]  # the ten slowest
    assert len(layers) == 10 and all(" ms " in line for line in layers)
    assert any("Convolution" in line for line in layers)


def test_no_roofline_leaves_the_rows_as_they_were(tiny_onnx, tmp_path):
    summary = tmp_path / "bench.json"
    argv = ["bench", "--model", f"{tiny_onnx}", "--loop", "1", "--warmup", "0", "--no-roofline"]
    assert main([*argv, "--summary", str(summary)]) == 0
    row = json.loads(summary.read_text())["rows"][0]
    assert "macs_per_clip" not in row and row["precision"] == "fp32"
