"""The hostile corpus, built once per session (a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_corpus import build_corpus


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("av")
    return build_corpus(tmp_path_factory.mktemp("hostile"))
