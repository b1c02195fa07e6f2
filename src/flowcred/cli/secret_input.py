"""Reading a secret for the CLI: from standard input, a file or a prompt — never from argv.

A secret on the command line would land in shell history and in ``ps`` output for every user on
the machine, so there is deliberately no option that takes one.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from flowcred.errors import FieldProblem, InvalidCredential

MAX_SECRET_BYTES = 1024 * 1024


def _strip_newline(text: str) -> str:
    # `echo secret | flowcred ...` appends one newline; it is never part of the secret.
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def read_secret(*, from_stdin: bool, from_file: Path | None, prompt: str) -> str:
    """The secret value chosen by the flags, or an interactive prompt when attached to a TTY.

    Raises InvalidCredential when no source is usable or the value is empty.
    """
    if from_stdin and from_file is not None:
        raise InvalidCredential(
            [FieldProblem("secret", "use --secret-stdin or --secret-file, not both")]
        )
    if from_stdin:
        value = _strip_newline(sys.stdin.read(MAX_SECRET_BYTES + 1))
    elif from_file is not None:
        try:
            raw = from_file.read_bytes()
        except OSError as exc:
            raise InvalidCredential(
                [FieldProblem("secret", f"cannot read secret file {from_file} ({exc.strerror})")]
            ) from None
        if len(raw) > MAX_SECRET_BYTES:
            raise InvalidCredential([FieldProblem("secret", "secret file is larger than 1 MiB")])
        try:
            value = _strip_newline(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidCredential(
                [FieldProblem("secret", "secret file is not UTF-8 text")]
            ) from None
    elif sys.stdin.isatty():
        value = getpass.getpass(prompt)
    else:
        raise InvalidCredential(
            [
                FieldProblem(
                    "secret", "no secret given: pipe it with --secret-stdin or use --secret-file"
                )
            ]
        )
    if len(value) > MAX_SECRET_BYTES:
        raise InvalidCredential([FieldProblem("secret", "secret is larger than 1 MiB")])
    if not value:
        raise InvalidCredential([FieldProblem("secret", "is empty")])
    return value
