import json

import numpy as np
import pytest

from slowfast_deploy.cli import main
from slowfast_deploy.evaluation.report import confused_pairs, per_class_accuracy


def test_confused_pairs_and_per_class_accuracy():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 2, 2])
    assert confused_pairs(labels, predicted) == [(0, 1, 2), (1, 2, 1)]
    assert per_class_accuracy(labels, predicted) == [
        (0, 3, pytest.approx(1 / 3)),
        (1, 2, 0.5),
        (2, 1, 1.0),
    ]


@pytest.fixture
def results_file(tmp_path):
    path = tmp_path / "results.jsonl"
    rows = []
    for i, (label, pred) in enumerate([(0, 0), (0, 1), (1, 1), (2, 1), (2, 2), (2, 2)]):
        scores = [0.1] * 5
        scores[pred] = 0.6
        rows.append(
            {
                "key": str(i),
                "index": i,
                "video": f"v{i}.mp4",
                "label": label,
                "status": "ok",
                "scores": scores,
            }
        )
    rows.append(
        {"key": "x", "index": 6, "video": "bad.mp4", "label": 1, "status": "failed", "error": "bad"}
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_markdown_report_with_pictures(results_file, tmp_path):
    import matplotlib.image

    bench = tmp_path / "bench.json"
    bench.write_text(
        json.dumps(
            {
                "rows": [
                    {
                        "label": "m.xml",
                        "backend": "openvino",
                        "precision": "fp32",
                        "batchsize": b,
                        "throughput": 1.0 + b,
                    }
                    for b in (1, 2, 4)
                ]
            }
        )
    )
    names = tmp_path / "names.txt"
    names.write_text("zero\none\ntwo\nthree\nfour\n")
    out = tmp_path / "rep" / "report.md"
    assert (
        main(
            [
                "report",
                str(results_file),
                "--bench",
                str(bench),
                "--label-map",
                str(names),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "| results.jsonl | 6 | 1 | 0.6667 | 1.0000 | 0.7222 |" in text
    assert "| 2 | two | 1 | one | 1 |" in text  # a confused pair, with names
    for k in (0, 1):
        image = matplotlib.image.imread(out.parent / f"report_fig{k}.png")
        assert image.shape[0] > 200 and image.shape[1] > 200
        assert image[..., :3].std() > 0.05  # a drawing, not a blank canvas


def test_html_report_embeds_images(results_file, tmp_path):
    out = tmp_path / "report.html"
    assert main(["report", str(results_file), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 1
    assert "<td>0.6667</td>" in text


def test_report_rejects_bad_lines(tmp_path, capsys):
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"key": 1}\nnot json\n')
    assert main(["report", str(bad), "--out", str(tmp_path / "x.md")]) == 1
    assert "r.jsonl:2: not a JSON line" in capsys.readouterr().err


def _bench_file(path, rows):
    path.write_text(json.dumps({"rows": rows}))
    return path


def test_throughput_is_bars_with_one_batch_size_per_model(tmp_path):
    from slowfast_deploy.evaluation.report import throughput_figure

    one = _bench_file(
        tmp_path / "one.json",
        [
            {"label": m, "backend": "openvino", "precision": p, "batchsize": 1, "throughput": t}
            for m, p, t in (("a.xml", "fp32", 1.0), ("b.xml", "int8", 4.0))
        ],
    )
    fig = throughput_figure([one])
    assert len(fig.axes[0].patches) == 2 and not fig.axes[0].lines  # two bars, no lines
    many = _bench_file(
        tmp_path / "many.json",
        [
            {
                "label": "a.xml",
                "backend": "openvino",
                "precision": "fp32",
                "batchsize": b,
                "throughput": 1.0 + b,
            }
            for b in (1, 2)
        ],
    )
    fig = throughput_figure([many])
    assert len(fig.axes[0].lines) == 1 and not fig.axes[0].patches


def _results_400(tmp_path):
    path = tmp_path / "r400.jsonl"
    run = {
        "model_sha256": "ab" * 32,
        "backend": "openvino",
        "precision": "int8",
        "views": 1,
        "decoder": "decord",
    }
    rows = [{"key": "#run", "run": run}]
    for i, (label, pred) in enumerate([(5, 5), (7, 9), (9, 9)]):
        scores = [0.0] * 400
        scores[pred] = 1.0
        rows.append(
            {
                "key": str(i),
                "index": i,
                "video": f"v{i}.mp4",
                "label": label,
                "status": "ok",
                "scores": scores,
            }
        )
    rows.append(
        {"key": "x", "index": 3, "video": "bad.mp4", "label": 1, "status": "failed", "error": "bad"}
    )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "backend": "openvino",
        "precision": "int8",
        "cpu": "Test CPU, 2 cores",
        "this_run": {"videos_per_s": 1.5, "model_only_videos_per_s": 2.5},
    }
    (tmp_path / "r400.jsonl.summary.json").write_text(json.dumps(summary))
    return path


def test_report_opens_with_a_header_and_shows_kinetics_names(tmp_path):
    from slowfast_deploy.labels import kinetics400_labels

    results = _results_400(tmp_path)
    out = tmp_path / "report.md"
    assert main(["report", str(results), "--out", str(out)]) == 0
    text = out.read_text()
    head = text[: text.index("## ")]  # the header comes before every section
    for fact in (
        "**model sha256**: " + "ab" * 32,
        "**backend**: openvino",
        "**precision**: int8",
        "**CPU**: Test CPU, 2 cores",
        "**videos/s**: 1.5 end to end, 2.5 model only",
        "**failures**: 1 of 4: bad.mp4",
        "**date**: 20",
    ):
        assert fact in head
    names = kinetics400_labels()
    assert f"| 7 | {names[7]} | 9 | {names[9]} | 1 |" in text  # names without --label-map
    out_plain = tmp_path / "plain.md"
    assert main(["report", str(results), "--no-names", "--out", str(out_plain)]) == 0
    assert "| 7 |  | 9 |  | 1 |" in out_plain.read_text()


def test_report_header_names_the_model_and_its_fidelity(tmp_path, tiny_onnx):
    pytest.importorskip("openvino")
    from slowfast_deploy.evaluation.results import model_fingerprint
    from slowfast_deploy.export.compile import compile_model
    from slowfast_deploy.quantize.fidelity import Fidelity, write_fidelity

    xml = compile_model(tiny_onnx, backend="openvino", output=tmp_path / "m").path
    write_fidelity(xml, Fidelity(48, 47, 40, 0.09, 0.03, 40, 0, clips="48 clips from val"))
    results = _results_400(tmp_path)
    lines = results.read_text().splitlines()
    header = json.loads(lines[0])
    header["run"]["model_sha256"] = model_fingerprint(xml)
    results.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    out = tmp_path / "report.html"
    assert main(["report", str(results), "--model", str(xml), "--out", str(out)]) == 0
    text = out.read_text()
    assert "<th>model</th><td>m.xml</td>" in text
    assert "fidelity to fp32: top-1 47/48 (0.979), top-5 set 40/48" in text
    assert text.index("<table class='header'>") < text.index("<h2>")


def test_report_plots_a_speed_agreement_curve(results_file, tmp_path):
    fid = {
        "num_clips": 10,
        "top1_agree": 9,
        "top5_agree": 8,
        "max_score_diff": 0.1,
        "mean_score_diff": 0.05,
        "num_clear": 8,
        "clear_flipped": 0,
        "clips": "",
    }
    rows = [
        {
            "name": f"int8 k{k}",
            "precision": "int8",
            "preset": "mixed",
            "calibration": "c",
            "blocks_fp32": k,
            "layers_fp32": 4 * k,
            "clips_per_s": 10.0 - k,
            "speedup": 5.0 - k,
            "fidelity": {"test": {**fid, "top1_agree": 8 + k}},
        }
        for k in (0, 1, 2)
    ]
    curve = tmp_path / "sweep.json"
    curve.write_text(json.dumps({"cpu": "Test CPU", "rows": rows}))
    out = tmp_path / "report.md"
    assert main(["report", str(results_file), "--curve", str(curve), "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Speed vs agreement with fp32 (int8 sweep)" in text
    assert "| int8 k2 | 8 | 8.00 | 3.00x | 10/10 | 8/10 | 0.100 | 0/8 | - |" in text
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["report", str(results_file), "--curve", str(bad), "--out", str(out)]) == 1
