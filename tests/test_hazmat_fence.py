"""Keep ``cryptography.hazmat`` behind the fence: only ``flowcred/crypto/`` may import it.

Raw primitives are easy to misuse (nonce reuse, unframed associated data), so the rest of
flowcred goes through the recipes in ``flowcred.crypto``. Inside that package, only the private
underscore modules touch hazmat, so the recipes themselves read as recipes.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "flowcred"
HAZMAT = "cryptography.hazmat"


def _is_hazmat(module: str) -> bool:
    return module == HAZMAT or module.startswith(HAZMAT + ".")


def hazmat_imports(path: Path) -> list[int]:
    """Return the line numbers in ``path`` that import ``cryptography.hazmat`` in any form.

    Covers ``import cryptography.hazmat...``, ``from cryptography.hazmat... import x``,
    ``from cryptography import hazmat`` and ``importlib.import_module``/``__import__`` with a
    literal name. Mentions in comments or docstrings are not imports and do not count.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(_is_hazmat(alias.name) for alias in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if _is_hazmat(node.module) or (
                node.module == "cryptography" and any(a.name == "hazmat" for a in node.names)
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                name in {"import_module", "__import__"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and _is_hazmat(first.value)
            ):
                lines.append(node.lineno)
    return sorted(lines)


def fence_violations(package_root: Path) -> list[str]:
    """Return ``path:line`` for every hazmat import in ``package_root`` outside its ``crypto/``."""
    allowed = package_root / "crypto"
    violations: list[str] = []
    for path in sorted(package_root.rglob("*.py")):
        if path.is_relative_to(allowed):
            continue
        violations.extend(f"{path}:{line}" for line in hazmat_imports(path))
    return violations


def test_only_the_crypto_package_imports_hazmat() -> None:
    assert SRC.is_dir()
    assert fence_violations(SRC) == []


def test_inside_crypto_only_private_modules_import_hazmat() -> None:
    offenders = [
        f"{path.relative_to(SRC)}"
        for path in sorted((SRC / "crypto").rglob("*.py"))
        if not path.name.startswith("_") and hazmat_imports(path)
    ]
    assert offenders == []
    # The fence would be vacuous if the crypto package did not use hazmat at all.
    assert hazmat_imports(SRC / "crypto" / "_aead.py")


@pytest.mark.parametrize(
    "source",
    [
        "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\n",
        "import cryptography.hazmat.primitives.hashes as hashes\n",
        "import os, cryptography.hazmat\n",
        "from cryptography import hazmat\n",
        "from cryptography import fernet, hazmat as h\n",
        "def f():\n    from cryptography.hazmat.primitives import hmac\n",
        "import importlib\nimportlib.import_module('cryptography.hazmat.primitives')\n",
        "__import__('cryptography.hazmat')\n",
    ],
)
def test_the_fence_catches_a_hazmat_import_outside_crypto(tmp_path: Path, source: str) -> None:
    package = tmp_path / "flowcred"
    (package / "crypto").mkdir(parents=True)
    (package / "runtime").mkdir()
    (package / "crypto" / "_aead.py").write_text(source)
    (package / "runtime" / "sneaky.py").write_text(source)
    violations = fence_violations(package)
    assert len(violations) == 1
    assert violations[0].startswith(str(package / "runtime" / "sneaky.py") + ":")


@pytest.mark.parametrize(
    "source",
    [
        "from cryptography.fernet import Fernet\n",
        "import cryptography\n",
        '"""We never import cryptography.hazmat here."""\n',
        "# cryptography.hazmat is fenced off.\n",
        "from .cryptography.hazmat import x\n",
        "import cryptography.hazmatic\n",
    ],
)
def test_the_fence_ignores_what_is_not_a_hazmat_import(tmp_path: Path, source: str) -> None:
    (tmp_path / "module.py").write_text(source)
    assert fence_violations(tmp_path) == []
