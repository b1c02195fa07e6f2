"""The ``flowcred`` command as a user drives it (DESIGN §3)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowcred.cli.main import app

runner = CliRunner()


def cli(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def add_stripe() -> None:
    code, out, err = cli(
        "credentials",
        "add",
        "--type",
        "api_key",
        "--name",
        "stripe",
        "--set",
        "key_name=X-API-Key",
        "--set",
        "location=header",
        "--secret-stdin",
        input="s3cret-value",
    )
    assert code == 0, err
    assert "created credential 1" in out


def test_issue_walkthrough_masks_unless_reveal() -> None:
    add_stripe()
    code, out, _ = cli("resolve", "stripe")
    assert code == 0
    assert "X-API-Key" in out and "[secure]" in out and "s3cret-value" not in out
    code, out, _ = cli("resolve", "stripe", "--reveal")
    assert code == 0 and "s3cret-value" in out
    code, out, _ = cli("resolve", "stripe", "--json")
    data = json.loads(out)
    assert data["headers"] == {"X-API-Key": "[secure]"}
    code, out, _ = cli("resolve", "1", "--json", "--reveal")
    assert json.loads(out)["headers"] == {"X-API-Key": "s3cret-value"}


def test_trailing_newline_from_echo_is_not_part_of_the_secret() -> None:
    cli(
        "credentials",
        "add",
        "--type",
        "slack",
        "--name",
        "bot",
        "--secret-stdin",
        input="xoxb-abc-123\n",
    )
    _, out, _ = cli("resolve", "bot", "--json", "--reveal")
    assert json.loads(out)["headers"] == {"Authorization": "Bearer xoxb-abc-123"}


def test_composite_secret_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "twilio.json"
    secret_file.write_text('{"accountSid": "AC42", "authToken": "tw-token-9"}\n')
    code, _, err = cli(
        "credentials",
        "add",
        "--type",
        "twilio",
        "--name",
        "sms",
        "--tenant",
        "acme",
        "--secret-file",
        str(secret_file),
    )
    assert code == 0, err
    code, out, _ = cli("resolve", "sms", "--tenant", "acme", "--json", "--reveal")
    fields = json.loads(out)["fields"]
    assert fields["accountSid"] == "AC42" and fields["authToken"] == "tw-token-9"


def test_list_show_rotate_rollback_delete_json() -> None:
    add_stripe()
    code, out, _ = cli("credentials", "list", "--json")
    listed = json.loads(out)
    assert [c["handle"] for c in listed] == ["stripe"]
    assert "s3cret-value" not in out
    code, out, _ = cli(
        "credentials", "rotate", "stripe", "--secret-stdin", "--json", input="s3cret-two"
    )
    assert code == 0 and json.loads(out)["currentVersion"] == 2
    code, out, _ = cli("credentials", "show", "stripe", "--json")
    shown = json.loads(out)
    assert [v["version"] for v in shown["versions"]] == [2, 1]
    assert "s3cret" not in out
    code, out, _ = cli("credentials", "rollback", "stripe", "1", "--json")
    assert code == 0 and json.loads(out)["currentVersion"] == 3  # version 1's secret, anew
    code, out, _ = cli("resolve", "stripe", "--json", "--reveal")
    assert json.loads(out)["headers"]["X-API-Key"] == "s3cret-value"
    code, out, _ = cli("credentials", "delete", "stripe", "--yes", "--json")
    assert code == 0 and json.loads(out) == {"deleted": 1}
    code, out, _ = cli("credentials", "list", "--json")
    assert json.loads(out) == []


def test_stale_expected_version_exits_1() -> None:
    add_stripe()
    cli("credentials", "rotate", "stripe", "--secret-stdin", input="s3cret-two")
    code, _, err = cli(
        "credentials",
        "rotate",
        "stripe",
        "--expected-version",
        "1",
        "--secret-stdin",
        input="s3cret-three",
    )
    assert code == 1
    assert "version conflict" in err and "s3cret" not in err


@pytest.mark.parametrize(
    ("args", "stdin", "needle"),
    [
        (["resolve", "missing"], None, "not found"),
        (
            ["credentials", "add", "--type", "nope", "--name", "x", "--secret-stdin"],
            "value-xyz-1",
            "unknown credential type",
        ),
        (
            ["credentials", "add", "--type", "slack", "--name", "x", "--secret-stdin"],
            "not-a-slack-token",
            "token",
        ),
        (
            [
                "credentials",
                "add",
                "--type",
                "api_key",
                "--name",
                "x",
                "--set",
                "location=body",
                "--secret-stdin",
            ],
            "abcdef",
            "location",
        ),
        (
            [
                "credentials",
                "add",
                "--type",
                "api_key",
                "--name",
                "x",
                "--set",
                "oops",
                "--secret-stdin",
            ],
            "abcdef",
            "key=value",
        ),
        (["credentials", "add", "--type", "api_key", "--name", "x"], None, "--secret-stdin"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], stdin: str | None, needle: str) -> None:
    code, out, err = cli(*args, input=stdin)
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out
    if stdin:
        assert stdin not in err + out


def test_no_option_accepts_a_secret_as_argument() -> None:
    code, _, err = cli(
        "credentials", "add", "--type", "api_key", "--name", "x", "--secret", "s3cret"
    )
    assert code == 2
    assert "No such option" in err


def test_types_lists_catalog_and_one_type() -> None:
    code, out, _ = cli("types", "--json")
    names = {t["name"] for t in json.loads(out)}
    assert {
        "api_key",
        "bearer_token",
        "basic_auth",
        "no_auth",
        "oauth2",
        "slack",
        "twilio",
        "postgres",
        "kafka",
        "google_service_account",
    } <= names
    code, out, _ = cli("types", "twilio", "--json")
    fields = {f["name"]: f["secret"] for f in json.loads(out)["fields"]}
    assert fields == {"accountSid": True, "authToken": True, "api_base_url": False}
    code, out, _ = cli("types", "postgres")
    assert code == 0 and "ssl_mode" in out


def test_keys_rotate_and_status() -> None:
    add_stripe()
    code, out, _ = cli("keys", "rotate", "--json")
    assert code == 0
    assert json.loads(out) == {"kekVersion": 2, "rewrapped": 1, "resumed": False}
    code, out, _ = cli("keys", "status", "--json")
    assert json.loads(out)["pendingRewraps"] == 0
    code, out, _ = cli("resolve", "stripe", "--json", "--reveal")
    assert json.loads(out)["headers"]["X-API-Key"] == "s3cret-value"


def test_init_creates_private_home(tmp_path: Path) -> None:
    code, out, _ = cli("init")
    assert code == 0
    home = tmp_path / "home"
    assert (home / "master.key").stat().st_mode & 0o777 == 0o600
    assert (home / "flowcred.db").stat().st_mode & 0o777 == 0o600
    assert "master.key" in out


def test_installed_console_script_runs(tmp_path: Path) -> None:
    """The real entry point, as a user's shell runs it (stdin pipe, exit codes)."""
    exe = Path(sys.executable).parent / "flowcred"
    env = {"FLOWCRED_HOME": str(tmp_path / "sub"), "PATH": "/usr/bin:/bin"}
    add = subprocess.run(
        [
            str(exe),
            "credentials",
            "add",
            "--type",
            "bearer_token",
            "--name",
            "svc",
            "--secret-stdin",
        ],
        input="tok-123456",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert add.returncode == 0, add.stderr
    shown = subprocess.run(
        [str(exe), "resolve", "svc"], capture_output=True, text=True, env=env, timeout=60
    )
    assert shown.returncode == 0 and "[secure]" in shown.stdout and "tok-123456" not in shown.stdout
    missing = subprocess.run(
        [str(exe), "resolve", "nope"], capture_output=True, text=True, env=env, timeout=60
    )
    assert missing.returncode == 2 and missing.stderr.startswith("error:")


def test_credentials_test_calls_the_configured_url_with_the_material() -> None:
    """`credentials test` GETs test_url with the credential applied: 2xx passes, else exit 1."""
    import http.server
    import threading

    seen: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("X-API-Key"))
            self.send_response(200 if self.headers.get("X-API-Key") == "s3cret-value" else 401)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/check"
        add_stripe()
        cli(
            "credentials",
            "add",
            "--type",
            "api_key",
            "--name",
            "good",
            "--set",
            f"test_url={url}",
            "--secret-stdin",
            input="s3cret-value",
        )
        cli(
            "credentials",
            "add",
            "--type",
            "api_key",
            "--name",
            "bad",
            "--set",
            f"test_url={url}",
            "--secret-stdin",
            input="wrong-value",
        )
        code, out, _ = cli("credentials", "test", "good", "--json")
        shown = json.loads(out)
        assert code == 0 and {k: shown[k] for k in ("ok", "status", "message")} == {
            "ok": True,
            "status": 200,
            "message": "credential accepted",
        }
        assert shown["latencyMs"] >= 0 and shown["checkedAt"].endswith("Z")
        code, out, _ = cli("credentials", "test", "bad")
        assert code == 1 and "rejected with HTTP 401" in out and "wrong-value" not in out
        code, _, err = cli("credentials", "test", "stripe")
        assert code == 2 and "test_url" in err
        assert seen == ["s3cret-value", "wrong-value"]
    finally:
        server.shutdown()
        server.server_close()
