"""The one table of failure reasons, and the docs pages that quote it."""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
from pathlib import Path

from slowfast_deploy.errors import REASONS, Reason, VideoDecodeError, video_status

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGE = DOCS / "reference" / "reasons.md"
# the guides whose reason tables quote the enum
GUIDES = ("guides/hostile-files.md", "guides/watch.md", "guides/serve.md")

INTRO = """\
# Failure reasons

Every failure the toolkit reports as data carries one `reason` code: a video that does not
decode (the `reason` of a results line, `predict --format json`), a live source that does not
open or is lost (`stream_failed`, `stream_lost` events), and a request the server refuses (the
problem body `{"error", "reason", "status"}`). This page is `slowfast_deploy.errors.REASONS`,
the one table of them (a test keeps it in step: `SLOWFAST_DEPLOY_ACCEPT=1 pytest
tests/test_reasons.py` rewrites it). *HTTP* is the status `serve` answers with (a video's own
`invalid` is 422); *retry* says whether the same request, run or connection may succeed if
simply tried again later.

| reason | meaning | HTTP | retry |
| --- | --- | --- | --- |
"""


def reasons_page() -> str:
    rows = [
        f"| `{r}` | {info.meaning} | {info.http_status} | {'yes' if info.retryable else ''} |"
        for r, info in REASONS.items()
    ]
    return INTRO + "\n".join(rows) + "\n"


def test_every_reason_is_in_the_one_table_once():
    assert list(REASONS) == list(Reason)
    assert len({r.value for r in Reason}) == len(Reason)


def test_a_reason_is_its_string_everywhere_it_is_written():
    assert Reason.NOT_FOUND == "not_found"
    assert f"{Reason.DECODE_TIMEOUT}" == str(Reason.DECODE_TIMEOUT) == "decode_timeout"
    assert json.dumps({"reason": Reason.QUEUE_FULL}) == '{"reason": "queue_full"}'
    assert Reason("truncated") is Reason.TRUNCATED


def test_a_decode_error_keeps_its_reason_across_processes():
    err = pickle.loads(pickle.dumps(VideoDecodeError("a.mp4: cut", reason=Reason.TRUNCATED)))
    assert err.reason is Reason.TRUNCATED and str(err) == "a.mp4: cut"


def test_video_statuses():
    assert video_status(Reason.NOT_FOUND) == 404
    assert video_status(Reason.PERMISSION_DENIED) == 403
    assert video_status(Reason.DECODE_TIMEOUT) == 504
    assert video_status(Reason.TRUNCATED) == video_status(Reason.INVALID) == 422


def test_the_reasons_page_is_the_table():
    if os.environ.get("SLOWFAST_DEPLOY_ACCEPT") == "1":
        PAGE.write_text(reasons_page(), encoding="utf-8")
    assert PAGE.read_text(encoding="utf-8") == reasons_page()


def reason_rows(page: str) -> list[tuple[str, list[str]]]:
    """``(first cell, codes)`` of each row of the tables with a ``reason`` column."""
    rows, header = [], None
    for line in (DOCS / page).read_text(encoding="utf-8").splitlines():
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.strip("`") for c in cells]
            continue
        if "reason" not in header or set(cells[0]) <= {"-", " "}:
            continue
        codes = re.findall(r"`([a-z_]+)`", cells[header.index("reason")])
        rows.append((cells[0], codes))
    return rows


def test_the_guides_name_only_reasons_and_the_serve_guide_their_status():
    named = set()
    for guide in GUIDES:
        for first, codes in reason_rows(guide):
            unknown = [c for c in codes if c not in set(Reason)]
            assert not unknown, (guide, first, unknown)
            named |= set(codes)
            if guide.endswith("serve.md"):
                statuses = {c: REASONS[Reason(c)].http_status for c in codes}
                video = {c: video_status(Reason(c)) for c in codes}
                assert all(int(first) in (statuses[c], video[c]) for c in codes), statuses
    # every reason a user meets in a guide's table (live losses are listed in its prose)
    assert named >= set(Reason) - {
        Reason.INVALID_INDICES,
        Reason.ENGINE_FAILED,
        Reason.LOST,
        Reason.ERROR,
        Reason.STALLED,
        Reason.ENDED,
        Reason.STOPPED,
    }, sorted(set(Reason) - named)


SRC = Path(__file__).resolve().parents[1] / "src" / "slowfast_deploy"
VALUES = {r.value for r in Reason}


def _reason_literals(path: Path) -> list[str]:
    """Reason codes written as bare strings: ``reason="..."`` or a table keyed by them."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.keyword) and node.arg == "reason":
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                found.append(f"{path.name}:{node.value.lineno}: reason={node.value.value!r}")
        elif isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if sum(k in VALUES for k in keys if isinstance(k, str)) >= 3:
                found.append(f"{path.name}:{node.lineno}: a table keyed by reason codes")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
            "Problem",
            "video_problem",
            "TimelineFailed",
            "_Lost",
        ):
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = getattr(node.func, "id", "")
                found.append(f"{path.name}:{node.lineno}: {name}({first.value!r}, ...)")
    return found


def test_one_reason_table_and_no_reason_literals():
    offending = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "errors.py"
        for hit in _reason_literals(path)
    ]
    assert not offending, "\n".join(offending)
