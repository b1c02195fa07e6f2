"""The README is a test: every shell and Python example runs, in order, as a user would.

``test_readme_examples_run_as_written`` reads README.md, runs each example in one fresh checkout
(a temporary working directory whose ``.flowcred`` is ``FLOWCRED_HOME``, with ``.venv`` being the
virtualenv running the tests), and checks what the README says the example prints. The
markup it reads is described in the README's "About the examples" section; in short:

* ```` ```sh ````, ```` ```bash ```` and ```` ```shell ```` blocks are bash scripts run with
  ``set -eo pipefail``, each in a fresh shell (variables do not carry over; files and a started
  server do). A ```` ```text ```` block right after one (blank lines between at most) is the
  output it must print, standard output and error together.
* ```` ```console ```` blocks hold ``$ `` command lines (a trailing ``\\`` continues a command on
  the next line, which may start with ``> ``); every other line is expected output, so a
  console block shows all of it.
* ```` ```python ```` blocks are scripts run with this interpreter; a following ```` ```text ````
  block is their output.
* In expected output ``...`` stands for any text within a line, and a line holding only
  ``...`` stands for any number of lines. Whitespace runs compare equal and blank lines are
  ignored. Without an output block only the exit status is checked.
* An HTML comment right before a block changes how it runs: ``<!-- readme-test: skip REASON -->``
  (not run, e.g. ``make`` or ``pip install``), ``<!-- readme-test: serve -->`` (run in the
  background as the server; the harness waits for ``/health``), ``<!-- readme-test: exit N -->``
  (the block must end with exit status N).
* The README's port, 8700, is replaced by a free loopback port in every example.

Anything the harness cannot classify — a block in another language, a stray ```` ```text ````
block, an unknown marker, a ``make``/``pip install``/``flowcred serve`` line in an ordinary
block — fails the test, so a new example cannot go untested by accident.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.oauth_support.server import AuthzServer

import flowcred

README = Path(__file__).resolve().parents[1] / "README.md"
README_PORT = "8700"
SHELL_LANGS = frozenset({"sh", "bash", "shell"})
PYTHON_LANGS = frozenset({"python", "py"})
RUNNABLE_LANGS = SHELL_LANGS | PYTHON_LANGS | {"console"}
BLOCK_TIMEOUT = 180.0  # seconds for one example; the machine running CI may be busy
SERVER_START_TIMEOUT = 90.0
SERVER_STOP_TIMEOUT = 20.0

_MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<word>[a-z-]+)(?:\s+(?P<arg>.*?))?\s*-->\s*$")
# Lines that must never run unmarked: they install things, rebuild the venv or never return.
_NEEDS_MARKER = re.compile(r"(^|[;&|(]\s*)(make|flowcred serve)\b|\bpip3? install\b")


class ReadmeMarkupError(Exception):
    """A block or marker the harness cannot classify; the README must be fixed."""


@dataclass(frozen=True)
class Example:
    """One example of the README and what it must print."""

    line: int  # of the opening fence, 1-based
    lang: str
    kind: str  # "shell", "python", "serve" or "skip"
    code: str
    expected: tuple[str, ...] | None = None  # None: output not checked
    exit_status: int = 0
    skip_reason: str = ""

    def where(self) -> str:
        return f"README.md:{self.line} ({self.lang} block)"


@dataclass
class _Fence:
    line: int
    lang: str
    body: list[str]
    marker: tuple[str, str, int] | None = None  # word, argument, line


def _fences(lines: Sequence[str]) -> Iterator[_Fence]:
    """Fenced blocks with the marker right before each; refuses what it cannot read."""
    marker: tuple[str, str, int] | None = None
    i = 0
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        number = i + 1
        if stripped.startswith("<!--") and "readme-test" in stripped:
            m = _MARKER.match(stripped)
            if m is None:
                raise ReadmeMarkupError(f"README.md:{number}: malformed readme-test marker")
            if marker is not None:
                raise ReadmeMarkupError(f"README.md:{number}: two markers for one block")
            marker = (m["word"], m["arg"] or "", number)
        elif stripped.startswith(("```", "~~~")):
            if raw != raw.lstrip() or stripped.startswith("~~~"):
                raise ReadmeMarkupError(
                    f"README.md:{number}: only ``` fences at the start of a line are supported"
                )
            lang = stripped[3:].strip()
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if end is None:
                raise ReadmeMarkupError(f"README.md:{number}: fence is never closed")
            yield _Fence(number, lang, list(lines[i + 1 : end]), marker)
            marker = None
            i = end
        elif stripped and marker is not None:
            raise ReadmeMarkupError(
                f"README.md:{marker[2]}: a readme-test marker must come right before a block"
            )
        i += 1
    if marker is not None:
        raise ReadmeMarkupError(f"README.md:{marker[2]}: marker without a block after it")


def _adjacent(lines: Sequence[str], before: _Fence, after: _Fence) -> bool:
    """Whether only blank lines separate the two blocks (``after`` is then ``before``'s output)."""
    closing = before.line + len(before.body)  # 0-based index of the closing fence
    return all(not lines[k].strip() for k in range(closing + 1, after.line - 1))


def _console(fence: _Fence) -> tuple[str, tuple[str, ...]]:
    """A console block's script (its ``$`` commands) and expected output (every other line)."""
    commands: list[str] = []
    expected: list[str] = []
    continuing = False
    for text in fence.body:
        if continuing:
            commands.append(text[2:] if text.startswith("> ") else text)
        elif text.startswith("$ "):
            commands.append(text[2:])
        else:
            expected.append(text)
            continue
        continuing = text.rstrip().endswith("\\")
    if not commands:
        raise ReadmeMarkupError(f"README.md:{fence.line}: console block without a '$ ' command")
    return "\n".join(commands) + "\n", tuple(expected)


def _check_unmarked_shell(fence: _Fence, script: str) -> None:
    for offset, text in enumerate(script.splitlines(), start=1):
        code = text.split(" #", 1)[0].strip()
        if code.startswith("#"):
            continue
        if _NEEDS_MARKER.search(code):
            raise ReadmeMarkupError(
                f"README.md:{fence.line}: line {offset} of the block ({code!r}) installs, builds "
                "or starts a server: mark the block <!-- readme-test: skip REASON --> or "
                "<!-- readme-test: serve -->"
            )


def parse_readme(text: str) -> list[Example]:
    """Every example of ``text`` in order; raises ReadmeMarkupError on anything unclassified."""
    lines = text.splitlines()
    fences = list(_fences(lines))
    examples: list[Example] = []
    k = 0
    while k < len(fences):
        fence = fences[k]
        output: _Fence | None = None
        if k + 1 < len(fences) and fences[k + 1].lang == "text" and fences[k + 1].marker is None:
            if _adjacent(lines, fence, fences[k + 1]):
                output = fences[k + 1]
        k += 2 if output is not None else 1
        examples.append(_example(fence, output))
    return examples


def _example(fence: _Fence, output: _Fence | None) -> Example:
    word, arg, _ = fence.marker or ("", "", 0)
    code = "\n".join(fence.body) + "\n"
    if word == "skip":
        if not arg:
            raise ReadmeMarkupError(f"README.md:{fence.line}: say why: readme-test: skip REASON")
        return Example(fence.line, fence.lang, "skip", code, skip_reason=arg)
    if fence.lang not in RUNNABLE_LANGS:
        raise ReadmeMarkupError(
            f"README.md:{fence.line}: a ```{fence.lang or '(no language)'} block is neither an "
            "example (sh, bash, shell, console, python) nor the output right after one; mark it "
            "<!-- readme-test: skip REASON --> if it is not meant to run"
        )
    expected = tuple(output.body) if output is not None else None
    if fence.lang == "console":
        if output is not None:
            raise ReadmeMarkupError(
                f"README.md:{output.line}: a console block carries its own output; "
                "no ```text block after it"
            )
        code, expected = _console(fence)
    exit_status = 0
    kind = "python" if fence.lang in PYTHON_LANGS else "shell"
    if word == "serve":
        if kind != "shell":
            raise ReadmeMarkupError(f"README.md:{fence.line}: a serve block must be a shell block")
        kind = "serve"
    elif word == "exit":
        if not arg.isascii() or not arg.isdigit() or int(arg) > 255:
            raise ReadmeMarkupError(f"README.md:{fence.line}: readme-test: exit takes 0-255")
        exit_status = int(arg)
    elif word:
        raise ReadmeMarkupError(f"README.md:{fence.line}: unknown marker readme-test: {word}")
    if kind == "shell":
        _check_unmarked_shell(fence, code)
    return Example(fence.line, fence.lang, kind, code, expected, exit_status)


# --- matching expected output --------------------------------------------------------------


def _normal(text: str) -> str:
    return " ".join(text.split())


def _line_pattern(expected: str) -> re.Pattern[str]:
    parts = [re.escape(_normal(p)) for p in _normal(expected).split("...")]
    return re.compile(".*".join(parts), re.DOTALL)


def output_matches(expected: Sequence[str], actual: str) -> bool:
    """Whether ``actual`` is what ``expected`` describes (``...`` wildcards, see the module)."""
    want = [_normal(e) for e in expected if e.strip()]
    got = [_normal(a) for a in actual.splitlines() if a.strip()]
    patterns = [None if w == "..." else _line_pattern(w) for w in want]
    # reachable[j]: the expected lines so far can account for exactly the first j actual lines.
    reachable = [True] + [False] * len(got)
    for pattern in patterns:
        step = [False] * (len(got) + 1)
        for j, ok in enumerate(reachable):
            if not ok:
                continue
            if pattern is None:
                for later in range(j, len(got) + 1):
                    step[later] = True
                break
            if j < len(got) and pattern.fullmatch(got[j]):
                step[j + 1] = True
        reachable = step
    return reachable[len(got)]


# --- running the examples ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Checkout:
    """A fresh directory a user would run the README in, with the current flowcred on PATH."""

    root: Path
    scripts: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen[bytes] | None = None
    server_log: Path | None = None

    @classmethod
    def create(cls, base: Path) -> Checkout:
        root = base / "checkout"
        scripts = base / "scripts"
        root.mkdir(parents=True)
        scripts.mkdir(parents=True)
        bin_dir = Path(sys.executable).parent
        # `source .venv/bin/activate` works as written: the venv is the one running the tests.
        if (Path(sys.prefix) / "bin" / "activate").is_file():
            (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        else:
            (root / ".venv" / "bin").mkdir(parents=True)
            (root / ".venv" / "bin" / "activate").write_text(f'export PATH="{bin_dir}:$PATH"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCRED_")}
        for name in ("FORCE_COLOR", "CLICOLOR_FORCE", "COLUMNS", "VIRTUAL_ENV"):
            env.pop(name, None)
        # The CLI and scripts run the flowcred this test imported (the worktree's src).
        source_root = str(Path(flowcred.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (source_root, env.get("PYTHONPATH", "")) if p
        )
        port = _free_port()
        env.update(
            # The default home, spelled out: every example runs in the checkout, so this is
            # <checkout>/.flowcred, and messages show the path a user sees.
            FLOWCRED_HOME=".flowcred",
            FLOWCRED_PORT=str(port),
            PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",
            NO_COLOR="1",
            TERM="dumb",
        )
        return cls(root, scripts, port, env)

    def localise(self, code: str) -> str:
        return re.sub(rf"(?<!\d){README_PORT}(?!\d)", str(self.port), code)

    def run(self, example: Example) -> None:
        if example.kind == "skip":
            return
        if example.kind == "serve":
            self.start_server(example)
            return
        if example.kind == "python":
            script = self.scripts / f"readme_line_{example.line}.py"
            script.write_text(self.localise(example.code))
            argv = [sys.executable, str(script)]
        else:
            argv = ["bash", "-eo", "pipefail", "-c", self.localise(example.code)]
        try:
            done = subprocess.run(
                argv,
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                timeout=BLOCK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{example.where()} did not finish within {BLOCK_TIMEOUT:.0f} s")
        output = done.stdout.decode("utf-8", "replace")
        if done.returncode != example.exit_status:
            pytest.fail(
                f"{example.where()} exited {done.returncode}, the README expects "
                f"{example.exit_status}; it printed:\n{output}"
            )
        self.check_output(example, output)

    def check_output(self, example: Example, output: str) -> None:
        assert "Traceback" not in output, f"{example.where()} printed a traceback:\n{output}"
        if example.expected is not None and not output_matches(example.expected, output):
            pytest.fail(
                f"{example.where()} printed something else than the README says.\n"
                "--- README:\n" + "\n".join(example.expected) + "\n--- printed:\n" + output
            )

    def start_server(self, example: Example) -> None:
        if self.server is not None:
            raise ReadmeMarkupError(f"{example.where()}: a server is already running")
        self.server_log = self.scripts / f"serve_line_{example.line}.log"
        with self.server_log.open("wb") as log:
            self.server = subprocess.Popen(
                ["bash", "-eo", "pipefail", "-c", self.localise(example.code)],
                cwd=self.root,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped as a whole below
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not self._healthy():
            if self.server.poll() is not None:
                pytest.fail(
                    f"{example.where()}: the server exited with {self.server.returncode}:\n"
                    + self.server_log.read_text(errors="replace")
                )
            if time.monotonic() > deadline:
                pytest.fail(f"{example.where()}: no /health answer in {SERVER_START_TIMEOUT} s")
            time.sleep(0.2)
        self.check_output(example, self.server_log.read_text(errors="replace"))

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/health", timeout=2
            ) as answer:
                return bool(answer.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def stop_server(self) -> str:
        """Stop the server as Ctrl-C would (then harder), in bounded time; return its output."""
        if self.server is None or self.server_log is None:
            return ""
        proc, self.server = self.server, None
        for sig, wait in ((signal.SIGINT, SERVER_STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
            if proc.poll() is not None:
                break
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        return self.server_log.read_text(errors="replace")


def run_examples(examples: Sequence[Example], base: Path) -> Checkout:
    """Run ``examples`` in order in a fresh checkout under ``base``; fail on the first mismatch.

    The OAuth examples talk to ``$DEMO_AUTH``: a loopback authorization server from the test
    suite (``tests/oauth_support``), with the clients the README uses registered.
    """
    checkout = Checkout.create(base)
    demo = AuthzServer().start()
    demo.register_client("reports", "reports-secret", grant_types=("client_credentials",))
    demo.register_client(
        "crm",
        "crm-secret",
        redirect_uris=(f"http://127.0.0.1:{checkout.port}/api/oauth/callback",),
    )
    checkout.env["DEMO_AUTH"] = demo.base_url
    try:
        for example in examples:
            checkout.run(example)
    finally:
        log = checkout.stop_server()
        demo.stop()
    assert "Traceback" not in log, f"the README's server printed a traceback:\n{log}"
    return checkout


# --- the tests -----------------------------------------------------------------------------


def test_every_block_of_the_readme_is_classified() -> None:
    examples = parse_readme(README.read_text(encoding="utf-8"))
    kinds = {e.kind for e in examples}
    assert {"shell", "python", "serve"} <= kinds, kinds
    for example in examples:
        if example.kind == "python":
            compile(example.code, example.where(), "exec")  # no top-level await, etc.


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_readme_examples_run_as_written(tmp_path: Path) -> None:
    missing = [tool for tool in ("bash", "curl") if shutil.which(tool) is None]
    if missing:  # a laptop may lack them; CI must not (the same rule as for PostgreSQL)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the README's examples need {', '.join(missing)}")
        pytest.skip(f"the README's examples need {', '.join(missing)}")
    run_examples(parse_readme(README.read_text(encoding="utf-8")), tmp_path)


# The harness itself: what it refuses and how it matches.

SAMPLE = """\
# title

<!-- readme-test: skip needs make -->
```sh
make run
```

```sh
echo hello
```

```text
hel...
```

<!-- readme-test: exit 3 -->
```bash
exit 3
```

```console
$ echo one \\
>   two
one two
$ echo three
three
```

```python
print("ok")
```
"""


def test_parse_classifies_examples_and_their_output() -> None:
    examples = parse_readme(SAMPLE)
    assert [(e.kind, e.lang) for e in examples] == [
        ("skip", "sh"),
        ("shell", "sh"),
        ("shell", "bash"),
        ("shell", "console"),
        ("python", "python"),
    ]
    assert examples[0].skip_reason == "needs make"
    assert examples[1].expected == ("hel...",)
    assert examples[2].exit_status == 3 and examples[2].expected is None
    assert examples[3].code == "echo one \\\n  two\necho three\n"
    assert examples[3].expected == ("one two", "three")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("```json\n{}\n```\n", "neither an example"),
        ("```\nplain\n```\n", "(no language)"),
        ("prose\n\n```text\nstray output\n```\n", "neither an example"),
        ("```sh\nmake test\n```\n", "mark the block"),
        ("```sh\ncd x && pip install -e .\n```\n", "mark the block"),
        ("```sh\npython -m pip install flowcred\n```\n", "mark the block"),
        ("```sh\nflowcred serve --port 8700\n```\n", "mark the block"),
        ("<!-- readme-test: skip -->\n```sh\nmake\n```\n", "say why"),
        ("<!-- readme-test: later -->\n```sh\ntrue\n```\n", "unknown marker"),
        ("<!-- readme-test: exit x -->\n```sh\ntrue\n```\n", "exit takes"),
        ("<!-- readme-test: serve -->\nprose\n```sh\ntrue\n```\n", "right before a block"),
        ("<!-- readme-test: skip why -->\n", "without a block"),
        ("<!-- readme-test skip -->\n```sh\ntrue\n```\n", "malformed"),
        ("```sh\ntrue\n", "never closed"),
        ("  ```sh\n  true\n  ```\n", "start of a line"),
        ("```console\necho no prompt\n```\n", "without a '$ ' command"),
        ("<!-- readme-test: serve -->\n```python\npass\n```\n", "must be a shell block"),
    ],
)
def test_parse_refuses_what_it_cannot_classify(text: str, complaint: str) -> None:
    with pytest.raises(ReadmeMarkupError, match=re.escape(complaint)):
        parse_readme(text)


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        (["a", "b"], "a\nb\n", True),
        (["a", "b"], "a\nb\nc\n", False),
        (["a", "...", "c"], "a\nb\nb2\nc\n", True),
        (["a", "...", "c"], "a\nc\n", True),
        (["...", "c"], "x\n\nc", True),
        (["a", "..."], "a", True),
        (["id ... done"], "id 42 done", True),
        (["id ... done"], "id 42 not", False),
        (["│ key │ value │"], "│ key      │ value          │", True),
        (["x"], "", False),
        ([], "", True),
        (["created ...", "..."], "created 1 (x)\nwarning", True),
    ],
)
def test_output_matching(expected: list[str], actual: str, matches: bool) -> None:
    assert output_matches(expected, actual) is matches


@pytest.mark.slow
def test_harness_runs_blocks_in_one_checkout_and_reports_mismatches(tmp_path: Path) -> None:
    script = "import os\nprint(open('file').read(), os.getcwd(), os.environ['FLOWCRED_HOME'])"
    good = parse_readme(
        "```sh\necho -n s3 > file\nflowcred --help\n```\n\n```text\n...\n```\n\n"
        f"```python\n{script}\n```\n```text\ns3 .../checkout .flowcred\n```\n"
        "<!-- readme-test: exit 3 -->\n```sh\nexit 3\n```\n"
    )
    run_examples(good, tmp_path / "good")
    bad = parse_readme("```sh\necho actual\n```\n```text\nexpected\n```\n")
    with pytest.raises(pytest.fail.Exception, match="printed something else"):
        run_examples(bad, tmp_path / "bad")
    status = parse_readme("<!-- readme-test: exit 3 -->\n```sh\ntrue\n```\n")
    with pytest.raises(pytest.fail.Exception, match="exited 0, the README expects 3"):
        run_examples(status, tmp_path / "status")


@pytest.mark.slow
def test_harness_serves_in_the_background_and_stops_the_server(tmp_path: Path) -> None:
    # A stand-in server with a /health page, on the README's port (which the harness replaces).
    served = parse_readme(
        "<!-- readme-test: serve -->\n```sh\nmkdir www && echo ok > www/health\n"
        "python -m http.server 8700 --bind 127.0.0.1 --directory www\n```\n\n"
        "```sh\ncurl -s localhost:8700/health\n```\n```text\nok\n```\n"
    )
    checkout = run_examples(served, tmp_path)
    assert checkout.server is None
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", checkout.port), 2):
        pass
