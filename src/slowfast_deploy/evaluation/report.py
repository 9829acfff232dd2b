"""Evaluation reports: a header, accuracy tables, per-class accuracy, confused pairs, pictures.

``summarize_results``, ``confused_pairs`` and ``run_header`` are pure; ``write_report`` renders
Markdown or HTML with PNG figures (matplotlib, lazily imported) next to it or embedded. The
report opens with what a reader needs first: which model (file, sha256), backend, precision with
its fidelity to fp32, CPU, date, videos/s and failures.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from slowfast_deploy._files import write_text_atomic
from slowfast_deploy._optional import require
from slowfast_deploy.engine.prediction import ResultLine
from slowfast_deploy.engine.scoring import top_k
from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.evaluation.metrics import Accuracy, accuracy, confusion_matrix
from slowfast_deploy.evaluation.results import HEADER_KEY, model_fingerprint, read_records
from slowfast_deploy.labels import resolve_labels
from slowfast_deploy.quantize.fidelity import read_fidelity
from slowfast_deploy.runtime.benchmark import cpu_name


@dataclass(frozen=True, slots=True)
class ResultsSummary:
    name: str
    accuracy: Accuracy | None
    num_failed: int
    labels: np.ndarray  # [N] true classes of the ok videos
    predicted: np.ndarray  # [N] top-1 classes


def summarize_results(name: str, records: Sequence[ResultLine]) -> ResultsSummary:
    ok = [r for r in records if r.get("status") == "ok" and r.get("label") is not None]
    failed = sum(r.get("status") != "ok" for r in records)
    if not ok:
        return ResultsSummary(name, None, failed, np.zeros(0, int), np.zeros(0, int))
    scores = np.array([r["scores"] for r in ok], dtype=np.float32)
    labels = np.array([r["label"] for r in ok])
    predicted = np.array([top_k(row, 1)[0] for row in scores])  # the one tie rule
    return ResultsSummary(name, accuracy(scores, labels), failed, labels, predicted)


def per_class_accuracy(labels: np.ndarray, predicted: np.ndarray) -> list[tuple[int, int, float]]:
    """``(class, videos, top-1 accuracy)`` for every class present, worst first."""
    rows = [
        (int(c), int((labels == c).sum()), float((predicted[labels == c] == c).mean()))
        for c in np.unique(labels)
    ]
    return sorted(rows, key=lambda r: (r[2], -r[1], r[0]))


def confused_pairs(
    labels: np.ndarray, predicted: np.ndarray, *, top: int = 10
) -> list[tuple[int, int, int]]:
    """``(true, predicted, count)`` of the most frequent confusions."""
    if not len(labels):
        return []
    matrix = confusion_matrix(predicted, labels, int(max(labels.max(), predicted.max())) + 1)
    np.fill_diagonal(matrix, 0)
    flat = np.argsort(matrix, axis=None)[::-1][:top]
    pairs = [
        (int(i), int(j), int(matrix[i, j]))
        for i, j in zip(*np.unravel_index(flat, matrix.shape), strict=True)
    ]
    return [p for p in pairs if p[2] > 0]


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    require("matplotlib.pyplot", extra="report", purpose="report").close(fig)
    return buffer.getvalue()


def confusion_png(
    summary: ResultsSummary, names: list[str] | None, *, max_classes: int = 40
) -> bytes:
    """Confusion matrix (row-normalised) over the most frequent true classes."""
    plt = require("matplotlib.pyplot", extra="report", purpose="report")
    classes, counts = np.unique(summary.labels, return_counts=True)
    keep = classes[np.argsort(-counts, kind="stable")[:max_classes]]
    keep.sort()
    index = {c: k for k, c in enumerate(keep)}
    matrix = np.zeros((len(keep), len(keep) + 1))  # last column: predicted outside the shown set
    for t, p in zip(summary.labels, summary.predicted, strict=True):
        if t in index:
            matrix[index[t], index.get(p, len(keep))] += 1
    matrix /= np.maximum(matrix.sum(1, keepdims=True), 1)
    size = 3 + 0.22 * len(keep)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    tick = [names[c] if names and c < len(names) else str(c) for c in keep]
    ax.set_xticks(range(len(keep) + 1), [*tick, "other"], rotation=90, fontsize=7)
    ax.set_yticks(range(len(keep)), tick, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"{summary.name}: confusion (row-normalised)")
    fig.colorbar(im, ax=ax, fraction=0.04)
    return _png(fig)


def throughput_png(bench_files: list[Path]) -> bytes:
    return _png(throughput_figure(bench_files))


def throughput_figure(bench_files: list[Path]) -> Any:
    """Throughput from bench summaries: bars when every model has one batch size, else
    throughput vs batch size, one line per model/backend/precision."""
    plt = require("matplotlib.pyplot", extra="report", purpose="report")
    series: dict[str, list[tuple[int, float]]] = {}
    for path in bench_files:
        if not path.is_file():
            raise DataFormatError(f"{path}: no such bench summary (from `bench --summary`)")
        for row in json.loads(path.read_text())["rows"]:
            key = f"{Path(row['label'].split('@')[0]).name} ({row['backend']} {row['precision']})"
            series.setdefault(key, []).append((row["batchsize"], row["throughput"]))
    if all(len(points) == 1 for points in series.values()):  # one batch size each: bars
        keys = sorted(series, key=lambda k: series[k][0][1])
        fig, ax = plt.subplots(figsize=(6.5, 0.9 + 0.45 * len(keys)))
        values = [series[k][0][1] for k in keys]
        bars = ax.barh(range(len(keys)), values, color="#4C72B0")
        ax.bar_label(bars, [f"{v:.2f}" for v in values], padding=3, fontsize=8)
        ax.set_yticks(range(len(keys)), [f"{k}, batch {series[k][0][0]}" for k in keys], fontsize=8)
        ax.set_xlabel("clips / s (model only)")
        ax.set_xlim(0, max(values) * 1.18)
        ax.grid(alpha=0.3, axis="x")
        ax.set_title("Throughput")
        return fig
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for key, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
    ax.set_xlabel("batch size")
    ax.set_ylabel("clips / s (model only)")
    ax.set_xscale("log", base=2)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("Throughput vs batch size")
    return fig


class SweepFidelity(TypedDict):
    """One setting's agreement with fp32 on a clip set (``quantize.fidelity``)."""

    top1_agree: int
    top5_agree: int
    num_clips: int
    max_score_diff: float
    clear_flipped: int
    num_clear: int


class SweepRow(TypedDict, total=False):
    """One setting of a sweep: its speed and, per clip set, its fidelity."""

    name: str
    precision: str
    preset: str
    calibration: str
    blocks_fp32: int
    layers_fp32: int
    clips_per_s: float
    speedup: float
    fidelity: dict[str, SweepFidelity]  # "test", "golden"


class _SweepRequired(TypedDict):
    rows: list[SweepRow]


class SweepCurve(_SweepRequired, total=False):
    """``tools/int8_sweep.py``'s ``sweep.json``."""

    cpu: str
    clips: dict[str, str]  # clip set -> what it is


def read_curve(path: Path) -> SweepCurve:
    """A speed/agreement sweep (``tools/int8_sweep.py``'s ``sweep.json``)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: no such sweep file (from tools/int8_sweep.py)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data["rows"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DataFormatError(f"{path}: not a sweep file from tools/int8_sweep.py ({err})") from err
    if not isinstance(rows, list):
        raise DataFormatError(f"{path}: 'rows' must be a list")
    curve: SweepCurve = data
    return curve


def _fidelity_of(row: SweepRow, key: str = "test") -> SweepFidelity | None:
    fidelity = row.get("fidelity") or {}
    return fidelity.get(key) if isinstance(fidelity, dict) else None


def curve_png(curve: SweepCurve, *, judged_on: str = "test") -> bytes:
    """Clips/s (x) against top-1 agreement with fp32 (y), one series per setting; each point
    labelled with the number of blocks kept in fp32."""
    plt = require("matplotlib.pyplot", extra="report", purpose="report")
    series: dict[str, list[tuple[float, float, str]]] = {}
    for row in curve["rows"]:
        f = _fidelity_of(row, judged_on)
        if f is None or "clips_per_s" not in row:
            continue
        key = (
            f"{row['precision']} {row.get('preset', '')} {row.get('calibration', '')}".strip()
            if "blocks_fp32" in row
            else row["name"]
        )
        tag = str(row.get("blocks_fp32", ""))
        series.setdefault(key, []).append(
            (row["clips_per_s"], f["top1_agree"] / f["num_clips"], tag)
        )
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, points in sorted(series.items()):
        points.sort(key=lambda p: int(p[2]) if p[2].isdigit() else -1)  # by blocks kept
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key)
        for x, y, tag in points:
            if tag:
                ax.annotate(tag, (x, y), textcoords="offset points", xytext=(3, 3), fontsize=7)
    ax.set_xlabel("clips / s (model only, batch 1)")
    ax.set_ylabel(f"top-1 agreement with fp32 ({judged_on} clips)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("Speed vs agreement (labels: residual blocks kept in fp32)")
    return _png(fig)


def curve_rows(curve: SweepCurve) -> list[list[str]]:
    rows = []
    for row in curve["rows"]:
        t, g = _fidelity_of(row, "test"), _fidelity_of(row, "golden")
        rows.append(
            [
                str(row["name"]),
                str(row.get("layers_fp32", "-")),
                f"{row['clips_per_s']:.2f}" if "clips_per_s" in row else "-",
                f"{row['speedup']:.2f}x" if row.get("speedup") else "-",
                *(
                    (
                        f"{t['top1_agree']}/{t['num_clips']}",
                        f"{t['top5_agree']}/{t['num_clips']}",
                        f"{t['max_score_diff']:.3f}",
                        f"{t['clear_flipped']}/{t['num_clear']}",
                    )
                    if t
                    else ("-",) * 4
                ),
                f"{g['top1_agree']}/{g['num_clips']}, {g['top5_agree']}/{g['num_clips']}"
                if g
                else "-",
            ]
        )
    return rows


def _run_of(path: Path) -> Mapping[str, object]:
    """The run header (``#run`` line) of a results file, ``{}`` if it has none."""
    with path.open(encoding="utf-8") as f:
        first = f.readline()
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        return {}
    return (
        record.get("run", {})
        if isinstance(record, dict) and record.get("key") == HEADER_KEY
        else {}
    )


def run_header(
    results: Path, *, model: Path | None = None, cpu: str | None = None
) -> list[tuple[str, str]]:
    """The report's opening facts for one results file: model file and sha256, backend,
    precision (with the model's fidelity to fp32 when it carries one), CPU, date, videos/s,
    failures. Read from the results header, the ``.summary.json`` beside it and ``model``."""
    run = _run_of(results)
    summary_path = results.with_name(results.name + ".summary.json")
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    records = read_records(results)
    failed = [r for r in records if r.get("status") != "ok"]
    sha = str(run["model_sha256"]) if run.get("model_sha256") else None
    model_text = "not recorded (pass --model)"
    precision = summary.get("precision") or run.get("precision") or "-"
    fidelity_text = ""
    if model is not None:
        actual = model_fingerprint(model)
        model_text = f"{model.name}" + (
            "" if sha in (None, actual) else " (WARNING: not the model of these results)"
        )
        sha = sha or actual

        fidelity = read_fidelity(model)
        if fidelity is not None:
            fidelity_text = f"; fidelity to fp32: {fidelity.summary()}"
    this_run = summary.get("this_run") or {}
    speed = "-"
    if this_run.get("videos_per_s"):
        speed = f"{this_run['videos_per_s']:.3g} end to end"
        if this_run.get("model_only_videos_per_s"):
            speed += f", {this_run['model_only_videos_per_s']:.3g} model only"
    if cpu is None:
        cpu = summary.get("cpu")
    if cpu is None:
        cpu = f"{cpu_name()} (the machine making this report; the results do not record theirs)"
    date = datetime.fromtimestamp(results.stat().st_mtime, tz=timezone.utc)
    return [
        ("results", results.name),
        ("model", model_text),
        ("model sha256", sha or "-"),
        ("backend", str(summary.get("backend") or run.get("backend") or "-")),
        ("precision", f"{precision}{fidelity_text}"),
        ("views, decoder", f"{run.get('views', '-')}, {run.get('decoder', '-')}"),
        ("CPU", cpu),
        ("date", date.strftime("%Y-%m-%d %H:%M UTC")),
        ("videos/s", speed),
        (
            "failures",
            f"{len(failed)} of {len(records)}"
            + (": " + ", ".join(str(r.get("video")) for r in failed[:5]) if failed else ""),
        ),
    ]


def write_report(
    results: list[Path],
    out: Path,
    *,
    bench: list[Path] | None = None,
    names: list[str] | None = None,
    default_names: bool = True,
    model: Path | None = None,
    curve: Path | None = None,
) -> list[Path]:
    """Write ``out`` (.md or .html); returns every file written.

    Without ``names``, a 400-class model's results get the shipped Kinetics-400 names
    (``default_names``). ``model`` (the model that made the results) adds its file name and
    fidelity to the header; ``curve`` adds a speed/agreement plot and table.
    """
    fmt = out.suffix.lower()
    if fmt not in (".md", ".html"):
        raise ValueError(f"--out must end in .md or .html, got {out}")
    all_records = [read_records(p) for p in results]
    summaries = [summarize_results(p.name, r) for p, r in zip(results, all_records, strict=True)]
    if names is None and default_names:
        widths = {len(r["scores"]) for rs in all_records for r in rs if r.get("scores")}
        names = resolve_labels(None, num_classes=widths.pop()) if len(widths) == 1 else None
    header = [run_header(p, model=model) for p in results]
    figures: list[tuple[str, bytes]] = []
    curve_data = read_curve(curve) if curve else None
    if curve_data:
        figures.append(("Speed vs agreement with fp32 (int8 sweep)", curve_png(curve_data)))
    for s in summaries:
        if s.accuracy is not None:
            figures.append((f"Confusion matrix: {s.name}", confusion_png(s, names)))
    if bench:
        figures.append(("Throughput", throughput_png(bench)))

    def name_of(c: int) -> str:
        return names[c] if names and c < len(names) else ""

    blocks: list[tuple[str, list[str], list[list[str]]]] = []
    if curve_data:
        blocks.append(
            (
                f"Speed vs agreement (CPU: {curve_data.get('cpu', '-')}; agreement on "
                f"{(curve_data.get('clips') or {}).get('test', 'the test clips')})",
                [
                    "model",
                    "fp32 convs",
                    "clips/s",
                    "speed-up",
                    "top-1",
                    "top-5 set",
                    "max |diff|",
                    "clear flips",
                    "golden top-1, top-5",
                ],
                curve_rows(curve_data),
            )
        )
    blocks.append(
        (
            "Accuracy",
            ["results", "videos ok", "failed", "top-1", "top-5", "mean class acc"],
            [
                [
                    s.name,
                    str(len(s.labels)),
                    str(s.num_failed),
                    *(
                        (
                            f"{s.accuracy.top1_acc:.4f}",
                            f"{s.accuracy.top5_acc:.4f}",
                            f"{s.accuracy.mean_class_acc:.4f}",
                        )
                        if s.accuracy
                        else ("-",) * 3
                    ),
                ]
                for s in summaries
            ],
        )
    )
    for s in summaries:
        if s.accuracy is None:
            continue
        pairs = confused_pairs(s.labels, s.predicted)
        blocks.append(
            (
                f"Most confused class pairs: {s.name}",
                ["true", "name", "predicted as", "name", "videos"],
                [[str(t), name_of(t), str(p), name_of(p), str(n)] for t, p, n in pairs],
            )
        )
        blocks.append(
            (
                f"Per-class top-1 accuracy (worst first): {s.name}",
                ["class", "name", "videos", "top-1"],
                [
                    [str(c), name_of(c), str(n), f"{a:.3f}"]
                    for c, n, a in per_class_accuracy(s.labels, s.predicted)
                ],
            )
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    written = [out]
    parts: list[str]
    if fmt == ".md":
        parts = ["# slowfast-deploy evaluation report\n"]
        for facts in header:
            parts.append("".join(f"- **{key}**: {value}\n" for key, value in facts))
        for k, (title, png) in enumerate(figures):
            image = out.with_name(f"{out.stem}_fig{k}.png")
            image.write_bytes(png)
            written.append(image)
            parts.append(f"## {title}\n\n![{title}]({image.name})\n")
        for title, columns, rows in blocks:
            parts.append(
                f"## {title}\n\n| {' | '.join(columns)} |\n|{'---|' * len(columns)}\n"
                + "".join(f"| {' | '.join(r)} |\n" for r in rows)
            )
        write_text_atomic(out, "\n".join(parts))
    else:
        parts = [
            "<!doctype html><meta charset='utf-8'><title>slowfast-deploy report</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px}"
            "table.header{margin-bottom:1em}table.header th{text-align:left;background:#f3f3f3}"
            "</style>",
            "<h1>slowfast-deploy evaluation report</h1>",
        ]
        for facts in header:
            parts.append(
                "<table class='header'>"
                + "".join(
                    f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>"
                    for key, value in facts
                )
                + "</table>"
            )
        for title, png in figures:
            data = base64.b64encode(png).decode()
            parts.append(
                f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
                f"src='data:image/png;base64,{data}'>"
            )
        for title, columns, rows in blocks:
            parts.append(
                f"<h2>{html.escape(title)}</h2><table><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in columns)
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                    for r in rows
                )
                + "</table>"
            )
        write_text_atomic(out, "\n".join(parts))
    return written
