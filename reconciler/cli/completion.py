"""`reconciler completion SHELL`: the shell's completion script, made by click's own machinery
(`click.shell_completion`). The script calls the console script back with _RECONCILER_COMPLETE set,
which click answers before any command runs (see README, Commands)."""

from __future__ import annotations

import click

from reconciler.cli.base import cli

SHELLS = ("bash", "zsh", "fish")
PROG_NAME = "reconciler"  # the console script (pyproject.toml)
COMPLETE_VARIABLE = "_RECONCILER_COMPLETE"  # click's name for it: _{PROG_NAME}_COMPLETE


@cli.command()
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> int:
    """Print the completion script of SHELL (bash, zsh or fish), e.g. `eval "$(reconciler completion
    bash)"` in ~/.bashrc."""
    from click.shell_completion import get_completion_class

    from reconciler.render import out

    script = get_completion_class(shell)
    assert script is not None  # click has a class for each of SHELLS
    out(script(cli, {}, PROG_NAME, COMPLETE_VARIABLE).source())
    return 0
