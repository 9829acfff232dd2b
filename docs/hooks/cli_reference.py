"""MkDocs hook: the CLI reference page, generated from the argparse parsers at build time.

``slowfast_deploy.cli.build_parser()`` is the one source of truth: every command, argument
group, flag, alias, choice, default and help text on ``reference/cli.md`` is read from it when
the site is built, so the page cannot drift from the code. Registered in ``mkdocs.yml``
(``hooks:``); also runnable alone: ``python docs/hooks/cli_reference.py`` prints the page.
"""

from __future__ import annotations

import argparse
import html
import re
from typing import Any

PAGE = "reference/cli.md"

INTRO = """\
# CLI reference

This page is generated from the command's own argparse parsers each time the site is built
(`docs/hooks/cli_reference.py` calls `slowfast_deploy.cli.build_parser()`), so it always
matches the installed code. `slowfast-deploy COMMAND --help` prints the same information.

Every flag written with a hyphen also accepts the reference guide's snake_case spelling where
one is listed (`--video-dir` / `--video_dir`). The global options work before or after the
command name.

Exit codes: 0 ok, 1 error (bad input, unavailable backend), 2 usage (arguments that do not
fit together or are out of range), 3 finished but some videos failed (listed), 130
interrupted. See [Bad input and exit codes](../guides/errors.md).
"""


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _cell(text: str) -> str:
    """Plain text made safe for one markdown table cell."""
    text = " ".join(text.split())
    return html.escape(text, quote=False).replace("|", "\\|")


def _code(text: str) -> str:
    return "`" + text.replace("|", "\\|") + "`" if text else ""


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:  # store_true, count, version, help
        return ""
    if action.choices is not None:
        return " \\| ".join(_code(str(c)) for c in action.choices)
    metavar = action.metavar
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    name = metavar or (action.dest.upper() if action.option_strings else action.dest)
    if action.nargs in ("*", "+"):
        return _code(f"{name}...")
    if action.nargs == "?":
        return _code(f"[{name}]")
    return _code(str(name))


def _default(action: argparse.Action) -> str:
    if action.required and action.option_strings:
        return "required"
    default = action.default
    if default is None or default is argparse.SUPPRESS or action.nargs == 0:
        return ""
    if isinstance(default, (list, tuple)) and not default:
        return ""
    return _code(str(default))


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return _code(action.metavar if isinstance(action.metavar, str) else action.dest)
    dashed = [s for s in action.option_strings if "_" not in s.lstrip("-")]
    snake = [s for s in action.option_strings if s not in dashed]
    text = ", ".join(_code(s) for s in dashed or snake)
    if dashed and snake:
        text += " (" + ", ".join(_code(s) for s in snake) + ")"
    return text


def _help(action: argparse.Action, parser: argparse.ArgumentParser) -> str:
    if not action.help or action.help is argparse.SUPPRESS:
        return ""
    text = action.help
    if "%(" in text:
        params: dict[str, Any] = dict(vars(action), prog=parser.prog)
        for key, value in list(params.items()):
            if isinstance(value, (list, tuple)):
                params[key] = ", ".join(map(str, value))
        text = text % params
    return _cell(text)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=88)  # fits the page without scrolling
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, "")
    return formatter.format_help().strip()


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "", name.lower())


def _section(parser: argparse.ArgumentParser, *, top: bool = False) -> list[str]:
    lines = [] if top else ["```text", _usage(parser), "```", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help is not argparse.SUPPRESS
            and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))
        ]
        if not top and group.title == "output":
            lines += [
                "**output**",
                "",
                "`-v`/`--verbose`, `-q`/`--quiet` and `--traceback` also work after the "
                "command name: see [global options](#global-options).",
                "",
            ]
            continue
        if not actions:
            continue
        lines += [f"**{group.title}**", ""]
        if group.description:
            lines += [_cell(group.description), ""]
        lines += ["| argument | value | default | description |", "| --- | --- | --- | --- |"]
        for action in actions:
            row = (_flags(action), _value(action), _default(action), _help(action, parser))
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    if parser.epilog:
        lines += [_cell(parser.epilog), ""]
    return lines


def render() -> str:
    """The whole CLI reference page as markdown."""
    from slowfast_deploy.cli import build_parser

    parser = build_parser()
    commands = _subparsers(parser)
    lines = [INTRO, "## Commands", ""]
    for name in commands:
        lines.append(f"- [`{name}`](#{_anchor(name)})")
    lines += ["", "## Global options", ""]
    lines += _section(parser, top=True)
    for name, sub in commands.items():
        lines += [f"## {name}", ""]
        lines += _section(sub)
    return "\n".join(lines).rstrip() + "\n"


def on_files(files: Any, config: Any) -> Any:
    """Add the generated page to the site (mkdocs >= 1.6: ``File.generated``)."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files


if __name__ == "__main__":
    print(render(), end="")
