"""Where key-encryption keys come from: a key file (the default) or ``FLOWCRED_MASTER_KEY``.

A :class:`KeySource` only provides raw keys, newest first; which database KEK version each key
is, and whether the right one is present, is decided by
:func:`~flowcred.crypto.kek_ring.build_ring` from the fingerprints the database records.

A KMS-backed source (AWS KMS and the like) plugs in later through the same :class:`KeySource`
protocol.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from flowcred.clock import Clock, SystemClock
from flowcred.crypto import _aead
from flowcred.crypto.kek_ring import fingerprint
from flowcred.errors import ConfigurationError, InsecureKeyFile

if TYPE_CHECKING:
    from flowcred.settings import FlowcredSettings

__all__ = [
    "EnvKeySource",
    "KeyFileSource",
    "KeySource",
    "generate_key",
    "key_source_from_settings",
]

KEY_FILE_FORMAT = "flowcred-kek-file/1"
_GENERATE_HINT = "python -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())'"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


@runtime_checkable
class KeySource(Protocol):
    """A place that holds key-encryption keys.

    Implementations never put key material into a repr, a message or a log line.
    """

    @property
    def description(self) -> str:
        """Human text naming the source in messages, e.g. ``"key file /srv/master.key"``."""
        ...

    def load(self) -> list[bytes]:
        """Return the raw 32-byte keys, newest first; ``[]`` if none exist yet.

        Raises :class:`~flowcred.errors.ConfigurationError` (or a subclass) if keys exist but
        cannot be used safely.
        """
        ...

    def create_initial(self) -> bytes:
        """Generate the first key, persist it and return it.

        Raises :class:`~flowcred.errors.ConfigurationError` if this source cannot create keys or
        already holds some.
        """
        ...

    def add_key(self, key: bytes) -> None:
        """Persist ``key`` as the new newest key, keeping the older ones (``flowcred keys rotate``).

        Raises :class:`~flowcred.errors.ConfigurationError` if this source cannot store keys.
        """
        ...


def generate_key() -> bytes:
    """Return a new random 32-byte key-encryption key."""
    return _aead.new_data_key()


class KeyFileSource:
    """Keys in a JSON file readable by its owner only (mode 0600), newest first.

    ```json
    {"format": "flowcred-kek-file/1",
     "keys": [{"created_at": "2026-01-01T00:00:00Z", "key": "<base64 of 32 bytes>"}]}
    ```

    Writes are atomic and durable: a 0600 temporary file in the same directory is fsynced and
    moved into place, then the directory is fsynced, so a crash leaves the old file or the new one,
    never a torn key file.
    """

    def __init__(self, path: Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.description = f"key file {self.path}"
        self._clock: Clock = clock if clock is not None else SystemClock()

    def __repr__(self) -> str:
        return f"KeyFileSource({str(self.path)!r})"

    def load(self) -> list[bytes]:
        """Return the keys in the file, newest first; ``[]`` if the file does not exist.

        Raises:
            InsecureKeyFile: the file's mode grants any permission to group or others.
            ConfigurationError: the file cannot be read or is not a valid key file. The message
                names the path and what is wrong, never the content.
        """
        entries = self._read()
        return [] if entries is None else [key for _, key in entries]

    def create_initial(self) -> bytes:
        """Generate a key, write it as a new key file and return it.

        Raises :class:`~flowcred.errors.ConfigurationError` if the file already exists (it may
        hold the only copy of the key existing secrets need) or cannot be written.
        """
        if os.path.lexists(self.path):
            raise self._exists_error()
        key = generate_key()
        self._write([(self._now(), key)], replace=False)
        return key

    def add_key(self, key: bytes) -> None:
        """Put ``key`` first in the file, keeping every older key after it.

        Concurrent calls are not serialised here; ``flowcred keys rotate`` holds the database's
        rotation lock around this.

        Raises:
            ValueError: ``key`` is not 32 bytes, or is already in the file.
            InsecureKeyFile, ConfigurationError: as for :meth:`load`, or the file does not exist
                (there would be no older key to keep) or cannot be written.
        """
        if len(key) != _aead.KEY_SIZE:
            raise ValueError("a key-encryption key must be exactly 32 bytes")
        entries = self._read()
        if entries is None:
            raise ConfigurationError(
                f"no key file at {self.path}; there is no key to rotate from "
                f"(start flowcred once to create it)"
            )
        if any(hmac.compare_digest(old, key) for _, old in entries):
            raise ValueError(f"this key is already in {self.description}")
        self._write([(self._now(), key), *entries], replace=True)

    def remove_keys(self, fingerprints: list[str]) -> None:
        """Rewrite the file without the keys whose :func:`fingerprint` is in ``fingerprints``.

        For ``flowcred keys retire``, which checks first that no data key needs them. Atomic like
        every write here. Refuses to remove every key (the primary must stay).
        """
        entries = self._read()
        if entries is None:
            raise ConfigurationError(f"no key file at {self.path}")
        drop = set(fingerprints)
        kept = [(created, key) for created, key in entries if fingerprint(key) not in drop]
        if not kept:
            raise ConfigurationError(f"refusing to remove every key from {self.description}")
        if len(kept) != len(entries):
            self._write(kept, replace=True)

    def _now(self) -> str:
        return self._clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _read(self) -> list[tuple[str, bytes]] | None:
        try:
            with open(self.path, "rb") as f:
                mode = os.fstat(f.fileno()).st_mode
                # The permission check comes before reading so that a key exposed to others is
                # reported as such and not silently used. Windows has no such mode bits.
                if os.name == "posix" and mode & 0o077:
                    raise InsecureKeyFile(
                        f"key file {self.path} has mode {stat.S_IMODE(mode):04o}, which lets group "
                        f"or others access it; run: chmod 600 {self.path}"
                    )
                if not stat.S_ISREG(mode):
                    raise self._parse_error("not a regular file")
                raw = f.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigurationError(
                f"Failed to read key file at {self.path}: {exc.strerror}"
            ) from None
        return self._parse(raw)

    def _parse(self, raw: bytes) -> list[tuple[str, bytes]]:
        try:
            doc = json.loads(raw)
        except ValueError:
            # The decoder's message can quote the content, which is key material; drop it.
            raise self._parse_error("not valid JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != KEY_FILE_FORMAT:
            raise self._parse_error(f'expected a JSON object with "format": "{KEY_FILE_FORMAT}"')
        items = doc.get("keys")
        if not isinstance(items, list) or not items:
            raise self._parse_error('"keys" must be a non-empty list')
        entries: list[tuple[str, bytes]] = []
        for index, item in enumerate(items):
            encoded = item.get("key") if isinstance(item, dict) else None
            try:
                key = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != _aead.KEY_SIZE:
                raise self._parse_error(f"keys[{index}].key is not base64 of 32 bytes")
            created_at = item.get("created_at")
            entries.append((created_at if isinstance(created_at, str) else "", key))
        return entries

    def _write(self, entries: list[tuple[str, bytes]], *, replace: bool) -> None:
        doc = {
            "format": KEY_FILE_FORMAT,
            "keys": [
                {"created_at": created_at, "key": base64.b64encode(key).decode("ascii")}
                for created_at, key in entries
            ],
        }
        data = json.dumps(doc, indent=2).encode("ascii") + b"\n"
        parent = self.path.parent
        tmp = parent / f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        try:
            _make_private_dir(parent)
            _write_new_file(tmp, data)
            try:
                if replace:
                    os.replace(tmp, self.path)
                else:
                    _link_no_clobber(tmp, self.path)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            _fsync_dir(parent)
        except FileExistsError:
            raise self._exists_error() from None
        except OSError as exc:
            raise ConfigurationError(
                f"Failed to write key file at {self.path}: {exc.strerror}"
            ) from None

    def _parse_error(self, reason: str) -> ConfigurationError:
        return ConfigurationError(f"Failed to parse key file at {self.path}: {reason}")

    def _exists_error(self) -> ConfigurationError:
        return ConfigurationError(
            f"key file {self.path} already exists; refusing to overwrite it, since it may hold "
            f"the only copy of the key existing secrets were sealed with"
        )


def _make_private_dir(directory: Path) -> None:
    # Only a directory we create is forced to 0700: an existing one (a home directory, /etc/...)
    # belongs to the operator. The explicit chmod defeats a permissive umask.
    try:
        directory.mkdir(mode=0o700, parents=True)
    except FileExistsError:
        return
    os.chmod(directory, 0o700)


def _write_new_file(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_CLOEXEC, 0o600)
    try:
        # The mode given to open() is filtered by the umask; set it exactly.
        if hasattr(os, "fchmod"):
            os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


def _link_no_clobber(src: Path, dst: Path) -> None:
    # A hard link appears atomically and fails if dst exists, so two processes creating the first
    # key at the same moment cannot overwrite each other's key (which could strand secrets one of
    # them already sealed). Filesystems without hard links fall back to a check-then-replace.
    try:
        os.link(src, dst)
    except FileExistsError:
        raise
    except OSError:
        if os.path.lexists(dst):
            raise FileExistsError(dst) from None
        os.replace(src, dst)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EnvKeySource:
    """Keys supplied by the operator in ``FLOWCRED_MASTER_KEY``: base64, comma-separated, newest
    first. flowcred never writes this source; the operator does, during a rotation.

    ```python
    source = EnvKeySource(os.environ["FLOWCRED_MASTER_KEY"])
    source.load()  # [newest_key, older_key]
    ```
    """

    description = "FLOWCRED_MASTER_KEY"

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "EnvKeySource(FLOWCRED_MASTER_KEY=[secure])"

    __str__ = __repr__

    def load(self) -> list[bytes]:
        """Return the keys in the variable, newest first; ``[]`` if it is empty.

        Raises :class:`~flowcred.errors.ConfigurationError` naming the position of a part that is
        not base64 of 32 bytes (never the part itself).
        """
        value = self._value.strip()
        if not value:
            return []
        parts = value.split(",")
        keys: list[bytes] = []
        for position, part in enumerate(parts, start=1):
            try:
                key = base64.b64decode(part.strip(), validate=True)
            except (binascii.Error, ValueError):
                key = b""
            if len(key) != _aead.KEY_SIZE:
                raise ConfigurationError(
                    f"FLOWCRED_MASTER_KEY: key {position} of {len(parts)} is not base64 of 32 bytes"
                )
            keys.append(key)
        return keys

    def create_initial(self) -> bytes:
        """Always raise :class:`~flowcred.errors.ConfigurationError`: the operator owns the keys."""
        raise ConfigurationError(
            "flowcred cannot create a key in FLOWCRED_MASTER_KEY: with FLOWCRED_MASTER_KEY the "
            f"operator supplies the keys; generate one with: {_GENERATE_HINT} and set it, or "
            "unset FLOWCRED_MASTER_KEY to use the key file"
        )

    def add_key(self, key: bytes) -> None:
        """Always raise :class:`~flowcred.errors.ConfigurationError`: the operator owns the keys."""
        raise ConfigurationError(
            "flowcred cannot add a key to FLOWCRED_MASTER_KEY: the operator supplies its keys; "
            f"to rotate, generate a new key (with: {_GENERATE_HINT}) and prepend it "
            "(comma-separated) to "
            "FLOWCRED_MASTER_KEY, keeping the old one until `flowcred keys rotate` finishes"
        )


def key_source_from_settings(settings: FlowcredSettings) -> KeySource:
    """Return :class:`EnvKeySource` if ``FLOWCRED_MASTER_KEY`` is set, else :class:`KeyFileSource`
    at ``settings.resolved_key_file``."""
    if settings.master_key is not None:
        return EnvKeySource(settings.master_key.get_secret_value())
    return KeyFileSource(settings.resolved_key_file)
