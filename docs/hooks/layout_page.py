"""MkDocs hook: the package layout page, generated from the source tree at build time.

Walks ``src/slowfast_deploy`` and lists every folder and module with the first sentence of
its docstring (read with ``ast``; nothing is imported), so ``design/layout.md`` follows the
code as modules are added, moved or removed. Registered in ``mkdocs.yml`` (``hooks:``); also
runnable alone: ``python docs/hooks/layout_page.py`` prints the page.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import tomllib

PAGE = "design/layout.md"
ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "slowfast_deploy"

INTRO = """\
# Package layout

The package is laid out by capability: one folder per capability, and at the root only the
public API, the specifications, labels, errors and the helpers every layer shares. Lower
layers never import higher ones (`video` and `model` know nothing of engines; `cli` parses
arguments and calls the library): an import-linter contract in `pyproject.toml`
(`[tool.importlinter]`) lists the layers; `lint-imports` checks it. Every new capability gets
its own folder.

This page is generated from the source tree each time the site is built
(`docs/hooks/layout_page.py`): each line is the first sentence of the module's docstring.
"""


def _summary(path: Path) -> str:
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (OSError, SyntaxError, UnicodeDecodeError):  # a folder being built: no __init__ yet
        return ""
    paragraph = " ".join(doc.split("\n\n")[0].split())
    match = re.match(r"(.+?\.)(\s|$)", paragraph)  # the first sentence
    text = match.group(1) if match else paragraph
    return text.rstrip(".").replace("|", "\\|")


def _rows(folder: Path, prefix: str) -> list[str]:
    rows = []
    for path in sorted(folder.glob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        rows.append(f"| `{prefix}{path.name}` | {_summary(path)} |")
    return rows


LAYERS_INTRO = """\
## Layers

Top to bottom, as `pyproject.toml`'s import-linter contract lists them (this list is read from
that file when the site is built, so the two cannot disagree). A module imports only from
layers below its own; names on one line are siblings that never import each other.
"""

# Why the contract differs from the first chain in the style guide (``STYLE.md`` section 3:
# cli -> serve/live/timeline/evaluation/reference -> engine -> quantize/export ->
# runtime/video/model -> specs/labels/errors), which drew the upper folders as siblings:
LAYERS_WHY = """\
The style guide's first drawing (cli -> serve/live/timeline/evaluation/reference -> engine ->
quantize/export -> runtime/video/model -> specs/labels/errors) put the upper folders side by
side. The code needs a stricter order, and the contract is the one checked:

- `serve` runs live streams and takes an `sd.Model` from `api`; `api`'s front doors
  (`model.watch`, `model.timeline`) call `live` and `timeline`; `live` scores windows with
  `timeline`'s code: so serve > api > live > timeline, not siblings.
- `quantize`'s calibration decodes videos with `engine.decode` and reads the reference `.bin`
  files, and `export.compile` quantizes: so export > quantize > reference > engine.
- `engine` is the one execution layer (decode jobs, worker processes, the batching queue)
  under every capability that runs the model on many inputs.
"""


def layers() -> list[str]:
    """The import-linter layers of ``pyproject.toml``, top first."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contract = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")
    names = [layer.strip("()").replace("slowfast_deploy.", "") for layer in contract["layers"]]
    return [" | ".join(part.strip() for part in name.split("|")) for name in names]


def render() -> str:
    """The layout page as markdown."""
    folders = sorted(p for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py")))
    lines = [INTRO, LAYERS_INTRO]
    lines += [f"{i}. `{layer}`" for i, layer in enumerate(layers(), 1)]
    lines += ["", LAYERS_WHY]
    lines += ["## Folders", "", "| folder | what it owns |", "| --- | --- |"]
    for folder in folders:
        lines.append(f"| [`{folder.name}/`](#{folder.name}) | {_summary(folder / '__init__.py')} |")
    lines += ["", "## Root", "", "| module | what it is |", "| --- | --- |"]
    lines += _rows(PACKAGE, "")
    for folder in folders:
        lines += ["", f"## {folder.name}", "", "| module | what it is |", "| --- | --- |"]
        lines += _rows(folder, f"{folder.name}/")
    tools = sorted((ROOT / "tools").glob("*.py"))
    if tools:
        lines += ["", "## tools", "", "Measurement scripts, outside the package.", ""]
        lines += ["| script | what it is |", "| --- | --- |"]
        lines += [f"| `tools/{p.name}` | {_summary(p)} |" for p in tools]
    return "\n".join(lines) + "\n"


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files


if __name__ == "__main__":
    print(render(), end="")
