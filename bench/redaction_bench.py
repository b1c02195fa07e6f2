"""Benchmark of flowcred.redaction against the Airflow-style regex rebuild.

Shows that registering a secret and redacting a log record cost the same with 10 and with
10,000 registered secrets, and puts the naive design beside it in the same run: one
``re.compile`` of every secret, rebuilt on each registration (what Airflow's secrets masker does).

Run with ``python bench/redaction_bench.py``; it takes well under 20 seconds. Every figure is the
best of a few bounded loops timed with ``time.perf_counter``, which filters out noise from other
processes rather than averaging it in.
"""

from __future__ import annotations

import io
import logging
import random
import re
import string
import time
from collections.abc import Callable

from flowcred.redaction import (
    SecretRegistry,
    install_log_redaction,
    uninstall_log_redaction,
)

Row = tuple[str, float, str]

_ALNUM = string.ascii_letters + string.digits
_PRINTABLE = _ALNUM + "!#$%&()*+,-./:;<=>?@[]^_{|}~"

# A typical log line of about 150 characters: timestamps, ids, a URL, no secret.
_LINE = (
    "12:00:01,123 INFO flowcred.runtime.httpx_auth: refreshed token for credential "
    "4711 (tenant acme, env prod) via https://auth.example.com/oauth2/token"
)


def _make_secrets(n: int, seed: int) -> list[str]:
    """Return ``n`` distinct secrets shaped like real ones.

    A third are GitHub-style tokens sharing the ``ghp_`` prefix (the worst case for a prefix
    index), a third URL-safe random tokens, a third passwords with punctuation.
    """
    rng = random.Random(seed)
    result: list[str] = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            value = "ghp_" + "".join(rng.choices(_ALNUM, k=36))
        elif kind == 1:
            value = "".join(rng.choices(_ALNUM + "-_", k=43))
        else:
            value = "".join(rng.choices(_PRINTABLE, k=rng.randint(12, 24)))
        result.append(f"{value}{i}")
    return result


def _best_per_call(func: Callable[[], object], calls: int, repeats: int = 5) -> float:
    """Return the best time per call in microseconds over ``repeats`` loops of ``calls`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            func()
        best = min(best, time.perf_counter() - start)
    return best / calls * 1e6


# Budgets large enough that every secret of the run stays registered, so "10,000 registered"
# is what the registry holds (the default transient budget, 32 MiB, keeps about 7,000 of these).
_BUDGETS = {"max_pinned_bytes": 1 << 30, "max_transient_bytes": 1 << 30}


def _registry() -> SecretRegistry:
    return SecretRegistry(**_BUDGETS)


def _registration_cost(
    base: list[str], fresh: list[str], batch: int, *, pinned: bool = False
) -> float:
    """Return µs per registration of a new secret into a registry already holding ``base``."""
    registry = _registry()
    registry.register_many(base, pinned=pinned)
    best = float("inf")
    for start in range(0, len(fresh), batch):
        chunk = fresh[start : start + batch]
        began = time.perf_counter()
        for value in chunk:
            registry.register(value, pinned=pinned)
        best = min(best, (time.perf_counter() - began) / len(chunk))
    return best * 1e6


def _flood_rows(n_secrets: int, secrets: list[str]) -> list[Row]:
    """A registry at its transient budget under a flood: bytes stay flat, pinned stay masked."""
    budget = 8 * 1024 * 1024
    registry = SecretRegistry(max_transient_bytes=budget)
    stored = secrets[:1_000]
    registry.register_many(stored, pinned=True)
    flood = [f"flood-{i:07d}-" + "x" * 24 for i in range(4 * n_secrets)]
    began = time.perf_counter()
    registry.register_many(flood)
    per_registration = (time.perf_counter() - began) / len(flood) * 1e6
    masked = sum(registry.redact(value) == "***" for value in stored)
    assert masked == len(stored), "a transient flood evicted a pinned secret"
    assert registry.transient_bytes <= budget
    return [
        (
            f"flood: per transient registration at the budget ({len(flood):,})",
            per_registration,
            "µs",
        ),
        ("flood: transient bytes after it (budget 8 MiB)", registry.transient_bytes / 2**20, "MiB"),
        ("flood: pinned secrets still masked (of 1,000)", float(masked), "n"),
    ]


def _log_call_cost(registry: SecretRegistry | None, calls: int) -> float:
    """Return µs per ``logger.info`` with a formatted StreamHandler, with or without redaction."""
    logger = logging.getLogger("flowcred.bench.redaction")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    if registry is not None:
        install_log_redaction(registry)
    try:

        def log() -> None:
            logger.info("refreshed token for credential %d (tenant %s) in %d ms", 4711, "acme", 1)
            stream.seek(0)
            stream.truncate()

        return _best_per_call(log, calls)
    finally:
        uninstall_log_redaction()
        logger.removeHandler(handler)


def run(n_secrets: int = 10_000) -> list[Row]:
    """Run every measurement and return (name, value, unit) rows."""
    rows: list[Row] = []
    secrets = _make_secrets(n_secrets + 2_000, seed=7)
    base, fresh = secrets[:n_secrets], secrets[n_secrets:]

    # (a) Registration cost, with few and with many secrets already registered.
    reg_small = _registration_cost(base[:10], fresh, batch=200)
    reg_large = _registration_cost(base, fresh, batch=200)
    pin_large = _registration_cost(base, fresh, batch=200, pinned=True)
    rows += [
        ("register: per secret, 10 registered", reg_small, "µs"),
        (f"register: per secret, {n_secrets:,} registered", reg_large, "µs"),
        (f"register: ratio {n_secrets:,}/10", reg_large / reg_small, "x"),
        (f"register: per pinned secret, {n_secrets:,} registered", pin_large, "µs"),
    ]

    # (b) Redaction cost per log record. The line with a secret carries a ghp_ token, whose
    # prefix is shared by a third of all registered secrets.
    small, large = _registry(), _registry()
    small.register_many(base[:10])
    large.register_many(base)
    assert len(large) == n_secrets
    rows.append(
        (f"registry: accounted bytes, {n_secrets:,} registered", large.nbytes / 2**20, "MiB")
    )
    newest_ghp = next(value for value in reversed(base) if value.startswith("ghp_"))
    with_secret_small = _LINE[:60] + base[0] + _LINE[60 + len(base[0]) :]
    with_secret_large = _LINE[:60] + newest_ghp + _LINE[60 + len(newest_ghp) :]
    assert small.redact(with_secret_small) != with_secret_small
    assert large.redact(with_secret_large) != with_secret_large
    calls = 20_000
    clean_small = _best_per_call(lambda: small.redact(_LINE), calls)
    clean_large = _best_per_call(lambda: large.redact(_LINE), calls)
    hit_small = _best_per_call(lambda: small.redact(with_secret_small), calls)
    hit_large = _best_per_call(lambda: large.redact(with_secret_large), calls)
    rows += [
        (f"redact: {len(_LINE)}-char line, no secret, 10 registered", clean_small, "µs"),
        (f"redact: {len(_LINE)}-char line, no secret, {n_secrets:,} registered", clean_large, "µs"),
        (f"redact: no secret, ratio {n_secrets:,}/10", clean_large / clean_small, "x"),
        ("redact: line with a secret, 10 registered", hit_small, "µs"),
        (f"redact: line with a secret, {n_secrets:,} registered", hit_large, "µs"),
        (f"redact: with secret, ratio {n_secrets:,}/10", hit_large / hit_small, "x"),
    ]

    # (b2) A flood of transient registrations against the byte budget.
    rows += _flood_rows(n_secrets, secrets)

    # The whole logging path: a logger.info through a formatting StreamHandler.
    plain = _log_call_cost(None, 10_000)
    redacted = _log_call_cost(large, 10_000)
    rows += [
        ("logger.info + format: without redaction", plain, "µs"),
        (f"logger.info + format: with redaction, {n_secrets:,} registered", redacted, "µs"),
    ]

    # (c) The Airflow-style baseline: one alternation of every secret, recompiled on each
    # registration. Distinct secrets keep re's pattern cache from hiding the compile cost.
    def airflow_costs(count: int) -> tuple[float, float, float]:
        known = secrets[: count - 10]
        pattern = re.compile("")
        began = time.perf_counter()
        for value in secrets[count - 10 : count]:
            known.append(value)
            pattern = re.compile("|".join(map(re.escape, known)))
        per_registration = (time.perf_counter() - began) / 10 * 1e6
        line = _LINE[:60] + known[-3] + _LINE[60 + len(known[-3]) :]
        assert pattern.sub("***", line) != line
        clean = _best_per_call(lambda: pattern.sub("***", _LINE), 500, repeats=3)
        hit = _best_per_call(lambda: pattern.sub("***", line), 500, repeats=3)
        return per_registration, clean, hit

    a_reg_small, a_clean_small, a_hit_small = airflow_costs(10)
    a_reg_large, a_clean_large, a_hit_large = airflow_costs(1_000)
    rows += [
        ("airflow-style: register, 10 registered", a_reg_small, "µs"),
        ("airflow-style: register, 1,000 registered", a_reg_large, "µs"),
        ("airflow-style: register, ratio 1,000/10", a_reg_large / a_reg_small, "x"),
        ("airflow-style: no-secret line, 10 registered", a_clean_small, "µs"),
        ("airflow-style: no-secret line, 1,000 registered", a_clean_large, "µs"),
        ("airflow-style: no-secret line, ratio 1,000/10", a_clean_large / a_clean_small, "x"),
        ("airflow-style: line with a secret, 10 registered", a_hit_small, "µs"),
        ("airflow-style: line with a secret, 1,000 registered", a_hit_large, "µs"),
        ("airflow-style vs flowcred: register at 1,000 vs 10,000", a_reg_large / reg_large, "x"),
        (
            "airflow-style vs flowcred: clean line at 1,000 vs 10,000",
            a_clean_large / clean_large,
            "x",
        ),
    ]
    return rows


if __name__ == "__main__":
    began = time.perf_counter()
    for name, value, unit in run():
        print(f"{name:<62} {value:>10.2f} {unit}")
    print(f"{'total bench time':<62} {time.perf_counter() - began:>10.2f} s")
