import pytest

from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.labels import kinetics400_labels, load_labels, resolve_labels


def test_kinetics400_names_ship_with_the_package():
    names = kinetics400_labels()
    assert len(names) == 400 == len(set(names))
    assert names[0] == "abseiling" and names[-1] == "zumba"
    assert names == sorted(names)  # Kinetics-400 class i is the i-th name in sorted order


def test_shipped_names_equal_the_golden_label_map(golden):
    assert kinetics400_labels() == load_labels(golden / "label_map_k400.txt", num_classes=400)


def test_resolve_labels_prefers_the_given_map(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("a\nb\n\n")
    assert resolve_labels(path, num_classes=2) == ["a", "b"]
    assert resolve_labels(None, num_classes=400) == kinetics400_labels()
    assert resolve_labels(None) == kinetics400_labels()
    assert resolve_labels(None, num_classes=10) is None  # no names rather than wrong ones
    with pytest.raises(DataFormatError, match="2 names for a 3-class model"):
        resolve_labels(path, num_classes=3)
