"""Views: the only place that writes to the terminal. Each command renders through a view with a
human (text) and a machine (JSON) form; colour only on a terminal and never with NO_COLOR."""

from __future__ import annotations

import os
import sys
from typing import TextIO

import click


def colour_enabled(stream: TextIO | None = None) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    stream = stream or sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, colour: bool, **style) -> str:
    return click.style(text, **style) if colour else text


def plain(text: object) -> str:
    """Text from outside (service text, descriptions, lease holders) fit for a terminal: known
    secrets hidden, control characters made visible, so nothing can move the cursor, recolour the
    terminal or start a new line."""
    from reconciler.redaction import scrub

    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in scrub(str(text)))


def out(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    click.echo(text, err=err, nl=nl, color=True)  # styling is decided by `paint`, not by click


def show_heading(text: str) -> None:
    out()
    out(paint(f"== {text}", colour_enabled(), bold=True))
