import json

import numpy as np
import pytest

from slowfast_deploy.cli import main
from slowfast_deploy.report import confused_pairs, per_class_accuracy


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
