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


def render() -> str:
    """The layout page as markdown."""
    folders = sorted(p for p in PACKAGE.iterdir() if p.is_dir() and any(p.glob("*.py")))
    lines = [INTRO, "## Folders", "", "| folder | what it owns |", "| --- | --- |"]
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
