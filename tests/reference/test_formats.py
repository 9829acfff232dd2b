import numpy as np
import pytest

from slowfast_deploy.engine.jobs import parse_annotations
from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.reference.formats import (
    BIN_SHAPE,
    bin_bytes,
    read_bin,
    read_info,
    read_result,
    result_bytes,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a.mp4 3\nb/c.mp4 0\n", [("a.mp4", 3, 1), ("b/c.mp4", 0, 2)]),
        ("\nwith space.mp4 12\n\n", [("with space.mp4", 12, 2)]),
        ("x.mp4\t5", [("x.mp4", 5, 1)]),
    ],
)
def test_parse_annotations(text, expected):
    got = parse_annotations(text, source="list.txt")
    assert [(a.path, a.label, a.line) for a in got] == expected
    assert [a.index for a in got] == list(range(len(expected)))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a.mp4 3\nb.mp4\n", r"list\.txt:2: expected"),
        ("a.mp4 three\n", r"list\.txt:1: expected"),
        ("\n\n", "no entries"),
    ],
)
def test_parse_annotations_errors(text, match):
    with pytest.raises(DataFormatError, match=match):
        parse_annotations(text, source="list.txt")


def test_bin_roundtrip_and_exact_bytes(tmp_path):
    video = np.random.default_rng(0).standard_normal(BIN_SHAPE, dtype=np.float32)
    data = bin_bytes(video)
    assert len(data) == 19_267_584
    assert data[:4] == np.float32(video.flat[0]).astype("<f4").tobytes()
    path = tmp_path / "0.bin"
    path.write_bytes(data)
    np.testing.assert_array_equal(read_bin(path), video)


def test_truncated_bin_names_file_and_fix(tmp_path):
    path = tmp_path / "7.bin"
    path.write_bytes(b"\0" * 1000)
    with pytest.raises(DataFormatError, match=r"7\.bin: 1000 bytes, expected 19267584.*preprocess"):
        read_bin(path)


def test_txt_result_format_is_the_reference_tools():
    scores = np.array([[0.5, 0.25, 1e-7]], dtype=np.float32)
    assert result_bytes(scores, "TXT") == b"0.500000 0.250000 0.000000 \n"


@pytest.mark.parametrize("fmt", ["TXT", "NPY", "BIN"])
def test_result_roundtrip(tmp_path, fmt):
    scores = np.random.default_rng(1).random((1, 400), dtype=np.float32)
    path = tmp_path / f"3_0.{fmt.lower()}"
    path.write_bytes(result_bytes(scores, fmt))
    np.testing.assert_allclose(read_result(path, num_classes=400), scores[0], atol=5e-7)


def test_result_with_wrong_class_count(tmp_path):
    path = tmp_path / "1_0.txt"
    path.write_text("0.1 0.2 \n")
    with pytest.raises(DataFormatError, match=r"1_0\.txt: holds 2 scores, expected 400"):
        read_result(path, num_classes=400)


def test_read_info_errors(tmp_path):
    path = tmp_path / "k.info"
    path.write_text("0 3\n1\n")
    with pytest.raises(DataFormatError, match=r"k\.info:2"):
        read_info(path)
