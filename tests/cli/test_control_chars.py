"""Item 12 (CLI part): user-supplied text is printed with control characters escaped, and
rich markup in it is printed as written, never interpreted."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from flowcred.cli import output
from flowcred.records import Credential

from ._helpers import cli

EVIL = "ev\x1b[2Jil\r\nfake row\x00 [bold]x[/bold] \u202eabc"


def render(renderable: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, width=300, color_system=None).print(renderable)
    return buffer.getvalue()


def record(**changes: object) -> Credential:
    fields: dict[str, object] = {
        "id": 1,
        "tenant": "default",
        "environment": "default",
        "handle": "h",
        "name": "n",
        "type": "api_key",
        "family": "api_key",
        "config": {},
        "status": "active",
        "created_at": datetime(2026, 12, 2, tzinfo=UTC),
        "updated_at": datetime(2026, 12, 2, tzinfo=UTC),
        "last_used_at": None,
        "expires_at": None,
        "current_version": 1,
    }
    fields.update(changes)
    return Credential(**fields)  # type: ignore[arg-type]


def assert_inert(text: str) -> None:
    for raw in ("\x1b", "\r", "\x00", "\u202e"):
        assert raw not in text, repr(text)
    assert "\\x1b[2J" in text and "\\r\\n" in text and "\\x00" in text and "\\u202e" in text


def test_visible_escapes_every_control_character() -> None:
    assert output.visible("a\x1bb\nc\td\x7f\x85") == "a\\x1bb\\nc\\td\\x7f\\x85"
    assert output.visible("Ключ API [bold]") == "Ключ API [bold]"


def test_tables_escape_control_characters_and_keep_markup_literal() -> None:
    table = output.credentials_table([record(name=EVIL, tenant=EVIL, handle="h\x1b")])
    text = render(table)
    assert_inert(text)
    assert "[bold]x[/bold]" in text
    text = render(output.key_value_table([("name", EVIL)]))
    assert_inert(text)


def test_console_print_of_a_message_escapes_but_keeps_newlines() -> None:
    buffer = io.StringIO()
    console = output.SafeConsole(file=buffer, width=300, color_system=None)
    console.print(f"created credential 1 (tenant {EVIL})\nsecond line")
    text = buffer.getvalue()
    assert "\x1b" not in text and "\r" not in text and "[bold]x[/bold]" in text
    assert text.count("\n") >= 2  # the message's own newline stays


def test_cli_output_of_a_tenant_with_escapes_and_markup() -> None:
    tenant = "t\x1b]0;owned\x07[red]x"
    code, out, err = cli(
        "credentials",
        "add",
        "--type",
        "api_key",
        "--name",
        "stripe",
        "--tenant",
        tenant,
        "--secret-stdin",
        input="s3cret-value",
    )
    if code != 0:  # tenants with control characters may be refused outright: also inert
        assert "\x1b" not in err and "\x07" not in err
        return
    assert "\x1b" not in out and "\x07" not in out and "\\x1b]0;owned\\x07[red]x" in out
    code, out, _ = cli("credentials", "list")
    assert code == 0 and "\x1b" not in out and "\\x1b" in out
