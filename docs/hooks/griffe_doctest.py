"""Griffe extension: doctest lines in docstrings render as Python console code.

The package's docstrings show short examples as bare ``>>>`` lines (runnable with doctest).
Markdown reads ``>`` as a quote, so this extension fences every run of such lines (the
``>>>``/``...`` lines and the output after them, up to a blank line) as ``pycon`` code before
mkdocstrings renders the docstring. Runs indented by four or more spaces are already code
blocks and are left alone. The source is not changed. Loaded by ``mkdocs.yml``
(``plugins: mkdocstrings: handlers: python: options: extensions``).
"""

from __future__ import annotations

from typing import Any

from griffe import Extension


def fence_doctests(text: str) -> str:
    """``text`` with each run of doctest lines (and their output) wrapped in a pycon fence."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if line.lstrip().startswith(">>>") and indent < 4:
            pad = " " * indent
            out.append(f"{pad}```pycon")
            while i < len(lines) and lines[i].strip():
                out.append(lines[i])
                i += 1
            out.append(f"{pad}```")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class FenceDoctests(Extension):
    def on_instance(self, *, obj: Any, **kwargs: Any) -> None:
        docstring = getattr(obj, "docstring", None)
        if docstring is not None and ">>>" in docstring.value:
            docstring.value = fence_doctests(docstring.value)
