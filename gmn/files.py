"""Files that are complete or absent, and checked before they are believed.

May import: nothing of gmn.

* :func:`atomic_write` is the one way gmn writes a file: to a temporary name in the same
  folder, flushed to disk, then renamed over the target (atomic on POSIX and Windows). A
  process killed at any moment leaves the old file or the new one, never a mix; the stray
  temporary it may leave (``.NAME.PID.tmp``) is removed by the next write of ``NAME`` or by
  :func:`remove_stale_temporaries`. Files are created ``0644`` (less the umask).
* :func:`sha256` hashes a file; :func:`verify_sha256` raises :class:`IntegrityError`
  naming the file when it disagrees with a recorded hash.
* :func:`write_json` / :func:`read_json`: JSON that carries the sha256 of its own content
  (``"content_sha256"``), so a file edited or damaged into other valid JSON is caught too;
  a truncated or damaged file raises :class:`CorruptFileError` naming it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

CONTENT_HASH = "content_sha256"


class IntegrityError(RuntimeError):
    """A stored file does not match the hash recorded for it (changed or corrupt)."""


class CorruptFileError(IntegrityError):
    """A file exists but cannot be parsed (truncated, damaged or of another kind)."""


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _fsync_folder(folder: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):  # persist the rename itself
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, write: Callable[[Path], None], *, mode: int = 0o644) -> Path:
    """Write ``path`` atomically: ``write(temporary_path)`` fills a temporary file in the same
    folder, which is flushed and renamed into place. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)
    tmp = _temporary(path)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, mode & ~umask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the temporaries a killed writer left in ``folder`` (``.NAME.PID.tmp``, and the
    ``.tmpXXXXXX`` names safetensors uses); returns what was removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.is_file() and _is_temporary(p.name)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and (name.endswith(".tmp") or name.startswith(".tmp"))


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes (``algorithm`` as ``hashlib.new`` names it)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256(path) -> str:
    """Hex sha256 of a file's bytes."""
    return file_digest(path, "sha256")


def verify_sha256(path, expected: str, record: str = "its record") -> None:
    """Raise :class:`IntegrityError` (or ``FileNotFoundError``) naming ``path`` unless the
    file exists and its sha256 is ``expected``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing but listed in {record}")
    actual = sha256(path)
    if actual != expected:
        raise IntegrityError(
            f"{path}: sha256 {actual[:12]}… does not match {record} ({expected[:12]}…): "
            "the file changed or is corrupt"
        )


def _content_digest(content: dict) -> str:
    text = json.dumps(content, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def write_json(obj: dict, path, *, indent: int | None = 2) -> Path:
    """Write the dict ``obj`` as JSON atomically, with the sha256 of its content added."""
    if not isinstance(obj, dict):
        raise TypeError(f"write_json stores a dict, got {type(obj).__name__}")
    content = json.loads(json.dumps(obj, default=str))  # as it will read back
    content.pop(CONTENT_HASH, None)
    text = json.dumps({**content, CONTENT_HASH: _content_digest(content)}, indent=indent)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))


def read_json(path, *, verify: bool = True) -> dict:
    """A JSON dict written by :func:`write_json` (without its ``content_sha256``).

    Raises:
        FileNotFoundError: no file.
        CorruptFileError: not valid JSON (truncated, damaged), naming the file.
        IntegrityError: the content does not match its recorded hash (``verify``).
    """
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptFileError(
            f"{path} is not valid JSON ({err}); it was truncated or damaged: delete it so "
            "that it is made again"
        ) from err
    if not isinstance(content, dict):
        raise CorruptFileError(f"{path} holds a JSON {type(content).__name__}, expected an object")
    recorded = content.pop(CONTENT_HASH, None)
    if verify and recorded is not None and recorded != _content_digest(content):
        raise IntegrityError(
            f"{path}: its content does not match the sha256 it was written with (the file "
            "was edited or damaged); delete it so that it is made again"
        )
    return content
