"""The README's Commands table says what `--help` says: every command has a row, every row names
a command that exists, and every option of a command appears in its row (the sandbox's many
options in its own section), so the table cannot fall behind the code."""

from __future__ import annotations

import re

import click

from reconciler.cli import cli
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def commands(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(commands(command, (*prefix, name)))
        else:
            found[" ".join((*prefix, name))] = command
    return found


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def rows() -> dict[str, str]:
    """Each `reconciler COMMAND …` synopsis of the Commands table → the whole row it is in."""
    table = [line for line in section("Commands").splitlines() if line.startswith("| `reconciler ")]
    found: dict[str, str] = {}
    known = sorted(commands(), key=len, reverse=True)
    for row in table:
        synopses = re.findall(r"`reconciler ([^`]+)`", row.split(" | ")[0])
        for synopsis in synopses:
            name = next((c for c in known if synopsis == c or synopsis.startswith(c + " ")), None)
            assert name is not None, f"the README documents `reconciler {synopsis}`, which is no command"
            found[name] = row
    return found


def options(command: click.Command) -> list[str]:
    return [o for p in command.params if isinstance(p, click.Option) for o in p.opts
            if o.startswith("--") and o != "--help"]


def test_every_command_has_a_row_and_every_row_a_command():
    assert set(rows()) == set(commands())


def test_every_option_of_a_command_is_in_its_row():
    documented = rows()
    missing = {name: [o for o in options(command) if not re.search(re.escape(o) + r"\b", documented[name])]
               for name, command in commands().items() if name != "sandbox serve"}
    assert {name: found for name, found in missing.items() if found} == {}


def test_every_sandbox_option_is_in_the_sandbox_section():
    text = section("The sandbox")
    missing = [o for o in options(commands()["sandbox serve"]) if not re.search(re.escape(o) + r"\b", text)]
    assert missing == []


def test_every_option_has_help_text():
    """`--format` says enough with its choices and default."""
    undocumented = [f"{name} {p.opts[0]}" for name, command in commands().items() for p in command.params
                    if isinstance(p, click.Option) and not p.help and p.opts[0] != "--format"]
    assert undocumented == []
