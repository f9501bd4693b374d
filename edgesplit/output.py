"""Shared CLI output helpers: one console, JSON files, clear errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.text import Text

# Wide tables when piped to a file or CI log (Rich would otherwise assume 80 columns).
console = Console(stderr=False, width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    """One line on stderr, exit ``code``: never wrapped at the terminal's width (a CI log or a
    pipe reads 80 columns), and the message's own brackets are text, not Rich markup."""
    line = Text.assemble(("error:", "bold red"), " ", message)
    err_console.print(line, soft_wrap=True, highlight=False)
    raise typer.Exit(code)


def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    err_console.print(f"wrote {path}")


def report_goal(report: dict, ok: bool, max_error: float, json_out: Path | None) -> None:
    """The validation commands' last lines: goal met or missed, and the JSON report."""
    report["within_goal"] = ok
    console.print(
        f"goal (mean error <= {max_error:.0%}): " + ("[green]met[/]" if ok else "[red]missed[/]")
    )
    if json_out:
        write_json(json_out, report)
