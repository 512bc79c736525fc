"""The command that made a run, for meta.json's `command` (audit s12 S16): the CLI's argv, or
"trainwise.run(...)" and the Python script it ran in. The CLI sets it for the length of one
command; a context variable, so a later trainwise.run() in the same process is not taken for
that command."""

from __future__ import annotations

import shlex
import sys
from contextvars import ContextVar

CLI_COMMAND: ContextVar[str | None] = ContextVar("trainwise_cli_command", default=None)


def cli_command(argv: list[str] | None) -> str:
    """`trainwise run data.csv --set ...` as typed (argv None: the process's own)."""
    return shlex.join(["trainwise", *(sys.argv[1:] if argv is None else argv)])


def command_line() -> str:
    cli = CLI_COMMAND.get()
    if cli is not None:
        return cli
    script = shlex.join(sys.argv) if any(sys.argv) else "an interactive session"
    return f"trainwise.run(...) from Python ({script})"


def shell_word(path: object) -> str:
    """`path` as one shell word, for every `trainwise <verb> PATH` we print to be pasted: a run
    folder is named after its data file, which can hold a space or `$(...)` (audit s16 S6: the
    report's predict line split at the space and ran the `$(...)`). A plain path is unchanged."""
    return shlex.quote(str(path))
