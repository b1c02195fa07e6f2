"""Flow validator benchmark: tasks validated per second on a large generated flow set.

Generates FLOWS flowgen flows of TASKS tasks each in a temporary directory (task types drawn from
every credentials_path family, each task with a realistic config: URLs, ids, headers, templates,
and a credentials_path into a pool of 0600 credential files of the right formats), then times:

* baseline — ``yaml.safe_load`` of the same files (with libyaml when available): the least work
  any YAML-reading validator must do;
* flowcred — ``flowcred.bindings.validate`` over the same files: compose with positions, detect
  the dialect, check every credentials file (once per file per run) and scan every scalar for
  raw secrets.

Each is the best of REPEATS runs, measured in this process seconds apart; the ratio is printed
because absolute times drift on a shared machine. Target (issue [bindings]): >= 1,000 tasks/s.
Also printed: the false-positive count (findings of any rule) on the examples' clean config.

Run: ``PYTHONPATH=.:src /work/main/.venv/bin/python bench/validate.py [FLOWS] [TASKS]``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from flowcred.bindings import validate
from flowcred.sources.chain import SourceChain
from flowcred.sources.env import EnvSource, variable_for

FLOWS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
TASKS = int(sys.argv[2]) if len(sys.argv) > 2 else 50
REPEATS = 3
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

CREDENTIAL_FILES = {
    "http": {"bearer_auth": "bench-token-0001"},
    "mcp": {"api_keys": ["bench-mcp-key-1"]},
    "nats": {"nkey": {"seed": "SUABENCHSEEDBENCHSEEDBENCHSEEDBENCHSEEDBENCHSEEDBENCHSEEDX"}},
    "mssql": {
        "host": "mssql.internal",
        "port": 1433,
        "database": "orders",
        "username": "app",
        "password": "bench-password",
    },
    "git": {"token": "bench-git-token"},
}
TASK_TYPES = [
    ("http_request", "http"),
    ("http_endpoint", "http"),
    ("mcp_tool", "mcp"),
    ("nats_jetstream_publish", "nats"),
    ("mssql_query", "mssql"),
    ("git_sync", "git"),
]
POOL = 4  # credential files per family: many tasks share one, as in real deployments


def task_yaml(flow: int, index: int) -> str:
    task_type, kind = TASK_TYPES[index % len(TASK_TYPES)]
    cred = f"credentials/{kind}-{(flow + index) % POOL}.json"
    return (
        f"    - {task_type}:\n"
        f"        name: step_{index}\n"
        f"        url: https://api{index % 7}.example.com/v1/orders/{{{{event.id}}}}?page={index}\n"
        f"        method: POST\n"
        f"        timeout_ms: {1000 + index}\n"
        f"        request_id: 550e8400-e29b-41d4-a716-{index:012d}\n"
        f"        checksum: 9f2e62d8a9275ce8b710b6ad9e186910{index:08x}\n"
        f"        headers:\n"
        f"          Content-Type: application/json\n"
        f"          X-Request-Source: flow-{flow}\n"
        f"        body: 'Order {{{{order.id}}}} for {{{{customer.name}}}} moved to step {index}'\n"
        f"        credentials_path: {cred}\n"
    )


def generate(root: Path) -> list[Path]:
    creds = root / "credentials"
    creds.mkdir(parents=True)
    for kind, body in CREDENTIAL_FILES.items():
        for n in range(POOL):
            path = creds / f"{kind}-{n}.json"
            path.write_text(json.dumps(body))
            path.chmod(0o600)
    paths = []
    for flow in range(FLOWS):
        path = root / f"flow_{flow:04d}.yaml"
        body = "".join(task_yaml(flow, i) for i in range(TASKS))
        path.write_text(f"flow:\n  name: bench_flow_{flow}\n  tasks:\n{body}")
        paths.append(path)
    return paths


def best_of(run: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def examples_false_positives() -> tuple[int, list[str]]:
    """Findings on the examples' clean config (0600 copy; Flow Studio ids not looked up)."""
    here = Path(__file__).resolve().parents[1] / "examples"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "examples"
        shutil.copytree(here, root)
        for path in (root / "flowgen" / "credentials").glob("*.json"):
            path.chmod(0o600)
        environ = {
            variable_for(n): "bench-value"
            for n in ("gcp_client_id", "gcp_client_secret", "gcp_refresh_token")
        }
        environ[variable_for("reporting_api_token")] = "bench-value"
        report = validate(
            [
                root / "flowgen/secure-webhook.yaml",
                root / "flow_studio/order-notifications.json",
                root / "credential_provider/sales-sync.yaml",
            ],
            sources=SourceChain([EnvSource(environ=environ)]),
        )
        # CRED100 says "no store given" (this bench opens none); everything else would be a
        # false positive on config that is clean by construction.
        noise = [f.text() for f in report.findings if f.rule != "CRED100"]
        return len(noise), noise


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = generate(Path(tmp))
        tasks = FLOWS * TASKS
        size = sum(os.path.getsize(p) for p in paths)
        print(f"flow set: {FLOWS} flows x {TASKS} tasks = {tasks} tasks, {size / 1e6:.1f} MB")

        def baseline() -> None:
            for path in paths:
                yaml.load(path.read_text(), Loader=_Loader)

        report = validate(paths)
        assert report.tasks == tasks, report.tasks
        assert report.findings == [], [f.text() for f in report.findings[:5]]
        base = best_of(baseline)
        ours = best_of(lambda: validate(paths))
        print(f"baseline yaml safe_load:  {base:7.3f} s  {tasks / base:10,.0f} tasks/s")
        print(f"flowcred validate:        {ours:7.3f} s  {tasks / ours:10,.0f} tasks/s")
        print(f"ratio validate/baseline:  {ours / base:7.2f}x")
        target = "met" if tasks / ours >= 1000 else "NOT met"
        print(f"target >= 1,000 tasks/s:  {target}")
    count, noise = examples_false_positives()
    print(f"false positives on the examples' clean config: {count}")
    for line in noise:
        print(f"  {line}")


if __name__ == "__main__":
    main()
