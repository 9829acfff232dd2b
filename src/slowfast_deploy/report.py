"""Evaluation reports: accuracy tables, per-class accuracy, confused pairs, pictures.

``summarize_results`` and ``confused_pairs`` are pure; ``write_report`` renders Markdown or
HTML with PNG figures (matplotlib, lazily imported) next to it or embedded.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from slowfast_deploy._optional import require
from slowfast_deploy.errors import DataFormatError
from slowfast_deploy.metrics import Accuracy, accuracy, confusion_matrix
from slowfast_deploy.results import read_records


@dataclass(frozen=True, slots=True)
class ResultsSummary:
    name: str
    accuracy: Accuracy | None
    num_failed: int
    labels: np.ndarray  # [N] true classes of the ok videos
    predicted: np.ndarray  # [N] top-1 classes


def summarize_results(name: str, records: list[dict[str, Any]]) -> ResultsSummary:
    ok = [r for r in records if r.get("status") == "ok" and r.get("label") is not None]
    failed = sum(r.get("status") != "ok" for r in records)
    if not ok:
        return ResultsSummary(name, None, failed, np.zeros(0, int), np.zeros(0, int))
    scores = np.array([r["scores"] for r in ok], dtype=np.float32)
    labels = np.array([r["label"] for r in ok])
    return ResultsSummary(name, accuracy(scores, labels), failed, labels, scores.argmax(1))


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
    """Throughput vs batch size, one line per model/backend/precision, from bench summaries."""
    plt = require("matplotlib.pyplot", extra="report", purpose="report")
    series: dict[str, list[tuple[int, float]]] = {}
    for path in bench_files:
        if not path.is_file():
            raise DataFormatError(f"{path}: no such bench summary (from `bench --summary`)")
        for row in json.loads(path.read_text())["rows"]:
            key = f"{Path(row['label'].split('@')[0]).name} ({row['backend']} {row['precision']})"
            series.setdefault(key, []).append((row["batchsize"], row["throughput"]))
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
    return _png(fig)


def write_report(
    results: list[Path],
    out: Path,
    *,
    bench: list[Path] | None = None,
    names: list[str] | None = None,
) -> list[Path]:
    """Write ``out`` (.md or .html); returns every file written."""
    fmt = out.suffix.lower()
    if fmt not in (".md", ".html"):
        raise ValueError(f"--out must end in .md or .html, got {out}")
    summaries = [summarize_results(p.name, read_records(p)) for p in results]
    figures: list[tuple[str, bytes]] = []
    for s in summaries:
        if s.accuracy is not None:
            figures.append((f"Confusion matrix: {s.name}", confusion_png(s, names)))
    if bench:
        figures.append(("Throughput vs batch size", throughput_png(bench)))

    def name_of(c: int) -> str:
        return names[c] if names and c < len(names) else ""

    blocks: list[tuple[str, list[str], list[list[str]]]] = []
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
    if fmt == ".md":
        parts = ["# slowfast-deploy evaluation report\n"]
        for k, (title, png) in enumerate(figures):
            image = out.with_name(f"{out.stem}_fig{k}.png")
            image.write_bytes(png)
            written.append(image)
            parts.append(f"## {title}\n\n![{title}]({image.name})\n")
        for title, header, rows in blocks:
            parts.append(
                f"## {title}\n\n| {' | '.join(header)} |\n|{'---|' * len(header)}\n"
                + "".join(f"| {' | '.join(r)} |\n" for r in rows)
            )
        out.write_text("\n".join(parts))
    else:
        parts = [
            "<!doctype html><meta charset='utf-8'><title>slowfast-deploy report</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 8px}</style>",
            "<h1>slowfast-deploy evaluation report</h1>",
        ]
        for title, png in figures:
            data = base64.b64encode(png).decode()
            parts.append(
                f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
                f"src='data:image/png;base64,{data}'>"
            )
        for title, header, rows in blocks:
            parts.append(
                f"<h2>{html.escape(title)}</h2><table><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in header)
                + "</tr>"
                + "".join(
                    "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                    for r in rows
                )
                + "</table>"
            )
        out.write_text("\n".join(parts))
    return written
