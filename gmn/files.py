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
* :func:`write_safetensors` / :func:`read_safetensors`: tensors whose file carries the
  sha256 of its own content (:func:`content_digest`) in its metadata, so a damaged file is
  caught even when every index that lists it is lost. Files are read through Python's own
  ``open`` (any path the OS accepts, non-UTF-8 names included).
* :func:`make_folder`, :func:`clear_folder`, :func:`folder_lock`: a folder made (or emptied,
  a symbolic link kept) with errors that name the path and say what to do, and locked by one
  process at a time (the lock names its holder: pid, host, command).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import struct
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from gmn import GMNError

CONTENT_HASH = "content_sha256"


class IntegrityError(GMNError, RuntimeError):
    """A stored file does not match the hash recorded for it (changed or corrupt)."""


class CorruptFileError(IntegrityError):
    """A file exists but cannot be parsed (truncated, damaged or of another kind)."""


class FolderLockedError(GMNError, BlockingIOError):
    """Another process holds the folder's lock (:func:`folder_lock`); the message names it."""


_HINTS = {
    errno.ENOSPC: "the disk is full: free space, then run the same command again (complete "
                  "files are kept)",
    errno.EDQUOT: "the disk quota is used up: free space, then run the same command again",
    errno.EACCES: "it is not writable by this user: choose another folder or change its "
                  "permissions",
    errno.EPERM: "it is not writable by this user: choose another folder or change its "
                 "permissions",
    errno.EROFS: "it is on a read-only file system: choose another folder",
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows: choose "
                        "shorter names",
}


def describe_os_error(err: OSError, action: str, path) -> OSError:
    """``err`` as the same kind of ``OSError`` whose message names ``path`` and what to do."""
    if getattr(err, "described", False):
        return err
    hint = _HINTS.get(err.errno, "")
    if err.errno == errno.ENAMETOOLONG:
        longest = max(Path(path).parts, key=len)
        hint += f" ('{longest[:40]}…' has {len(longest)} characters)"
    message = f"{err.strerror or err}: cannot {action} {path}" + (f"; {hint}" if hint else "")
    described = OSError(err.errno, message) if err.errno is not None else OSError(message)
    described.described = True
    return described


def require_type(value, kind: type, path, expected: str, error: type[Exception] = ValueError):
    """``value``, read from ``path``, when it is a ``kind``; else ``error`` naming the file,
    the type it holds and what was ``expected`` (e.g. ``"a state_dict"``)."""
    if not isinstance(value, kind):
        raise error(f"{path} holds a {type(value).__name__}, expected {expected}")
    return value


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
    folder, which is flushed and renamed into place. Returns ``path``.

    Raises:
        OSError: of the kind the system raised (``PermissionError``, ``OSError`` with
            ``errno.ENOSPC`` …), its message naming ``path`` and what to do.
    """
    path = Path(path)
    make_folder(path.parent)
    tmp = _temporary(path)
    try:
        for stale in path.parent.glob(f".{path.name}.*.tmp"):
            stale.unlink(missing_ok=True)
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, mode & ~umask)
        os.replace(tmp, path)
        _fsync_folder(path.parent)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise describe_os_error(err, "write", path) from err
        raise
    return path


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def write_figure(figure, path, **savefig_options) -> Path:
    """Save a matplotlib ``figure`` to ``path`` atomically, in the format its suffix names
    (``.png``, ``.pdf`` …): a killed run never leaves a truncated image."""
    path = Path(path)
    kind = path.suffix.lstrip(".") or None
    return atomic_write(path, lambda tmp: figure.savefig(tmp, format=kind, **savefig_options))


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


def verify_sha256(path, expected: str, record: str = "its record", *,
                  digest: str | None = None) -> None:
    """Raise :class:`IntegrityError` (or ``FileNotFoundError``) naming ``path`` unless the
    file exists and its sha256 is ``expected`` (``digest``: the file's, when already known)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing but listed in {record}")
    actual = digest or sha256(path)
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
    require_type(content, dict, path, "a JSON object", CorruptFileError)
    recorded = content.pop(CONTENT_HASH, None)
    if verify and recorded is not None and recorded != _content_digest(content):
        raise IntegrityError(
            f"{path}: its content does not match the sha256 it was written with (the file "
            "was edited or damaged); delete it so that it is made again"
        )
    return content


# ------------------------------------------------------------------ self-verifying content
def content_digest(value) -> str:
    """Hex sha256 of nested dicts, lists, tuples, tensors (dtype, shape, bytes) and plain
    values (type and ``repr``): equal for equal content, whatever file it was read from."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest, value) -> None:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"T{flat.dtype}{tuple(value.shape)}".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    elif isinstance(value, dict):
        digest.update(f"D{len(value)}".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{type(value).__name__}{len(value)}".encode())
        for item in value:
            _feed(digest, item)
    else:
        text = f"{type(value).__name__}:{value!r}"
        digest.update(f"S{len(text)}:{text}".encode())


def _safetensors_digest(tensors: dict, metadata: dict) -> str:
    return content_digest([{k: tensors[k] for k in sorted(tensors)},
                           {k: metadata[k] for k in sorted(metadata) if k != CONTENT_HASH}])


def write_safetensors(path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
                      ) -> Path:
    """Write named tensors (contiguous CPU copies) and string ``metadata`` as safetensors,
    atomically, with :func:`content_digest` of both stored as metadata ``content_sha256``.
    The same content gives the same bytes (the header's keys are sorted)."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = dict(metadata or {})
    metadata[CONTENT_HASH] = _safetensors_digest(tensors, metadata)
    data = save(tensors, metadata)
    size = _header_size(data)  # safetensors orders the header's maps at random: sort them
    header = json.dumps(json.loads(data[8:8 + size]), sort_keys=True, separators=(",", ":"))
    header += " " * (-len(header) % 8)  # the format's alignment padding
    data = struct.pack("<Q", len(header)) + header.encode() + data[8 + size:]
    return atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))


def read_safetensors_metadata(path) -> dict[str, str]:
    """The string metadata of a safetensors file, from its header only (not verified).

    Raises:
        CorruptFileError: the file has no readable safetensors header, naming it.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            return _header_metadata(head + handle.read(_header_size(head)))
    except (struct.error, ValueError, AttributeError) as err:
        raise _unreadable(path, err) from err


def _header_size(data: bytes) -> int:
    (size,) = struct.unpack("<Q", data[:8])
    if size > 100_000_000:
        raise ValueError(f"header size {size} is not plausible")
    return size


def _header_metadata(data: bytes) -> dict[str, str]:
    """The string metadata in the header of a safetensors file's bytes."""
    header = json.loads(data[8:8 + _header_size(data)])
    return dict(header.get("__metadata__") or {})


def _unreadable(path, err: Exception) -> CorruptFileError:
    return CorruptFileError(f"{path} is not a readable safetensors file ({type(err).__name__}: "
                            f"{err}); it was truncated or damaged")


def read_safetensors(path, names=None, *, data: bytes | None = None, verify: bool = True
                     ) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a file written by :func:`write_safetensors`, after checking
    its content against the ``content_sha256`` it carries (unless ``verify`` is False: for
    bytes another record vouched for); ``names`` keeps only those tensors; ``data``: the
    file's bytes when the caller has read them already.

    Raises:
        CorruptFileError: the file cannot be parsed (truncated, damaged), naming it.
        IntegrityError: its content does not match its recorded hash, or it carries none
            (then nothing vouches for it), naming it.
    """
    from safetensors.torch import load

    data = Path(path).read_bytes() if data is None else data
    try:
        tensors = load(data)
        metadata = _header_metadata(data)
    except Exception as err:  # noqa: BLE001 - safetensors raises its own kinds; name the file
        raise _unreadable(path, err) from err
    recorded = metadata.get(CONTENT_HASH)
    if verify and recorded is None:
        raise IntegrityError(f"{path} carries no {CONTENT_HASH}: nothing vouches for its "
                             "content (written by another program or an older gmn)")
    if verify and recorded != _safetensors_digest(tensors, metadata):
        raise IntegrityError(f"{path}: its content does not match the sha256 it was written "
                             "with; the file changed or is corrupt")
    if names is not None:
        missing = [name for name in names if name not in tensors]
        if missing:
            raise CorruptFileError(f"{path} has no tensor {missing[0]!r} (it holds "
                                   f"{sorted(tensors)[:5]}…)")
        tensors = {name: tensors[name] for name in names}
    return tensors, {k: v for k, v in metadata.items() if k != CONTENT_HASH}


# ------------------------------------------------------------------ folders
def make_folder(path) -> Path:
    """``path`` as an existing folder (parents made as needed).

    Raises:
        FileNotFoundError: ``path`` is a symbolic link to a folder that does not exist.
        OSError: of the kind the system raised, naming ``path`` and what to do.
    """
    path = Path(path)
    try:
        if path.is_symlink() and not path.exists():
            raise FileNotFoundError(f"{path} is a symbolic link to {os.readlink(path)}, which "
                                    "does not exist: create that folder or remove the link")
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as err:
        raise FileExistsError(f"{path} exists and is not a folder; remove it or choose another "
                              "name") from err
    except FileNotFoundError:
        raise
    except OSError as err:
        raise describe_os_error(err, "create the folder", path) from err
    return path


def clear_folder(path) -> None:
    """Delete everything inside the folder ``path``, keeping the folder itself (so a
    symbolic link to it stays a link to the same, now empty, folder)."""
    path = Path(path)
    if not path.exists():
        return
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


LOCK = ".gmn.lock"


@contextlib.contextmanager
def folder_lock(folder, command: str | None = None) -> Iterator[Path]:
    """Hold ``folder/.gmn.lock`` while the block runs: a second process (or a second lock in
    this one) raises :class:`FolderLockedError` naming the holder's pid, host, start time and
    command. The lock is the operating system's (``flock``): a killed holder releases it, and
    the next run takes it over. Yields the folder."""
    folder = make_folder(folder)
    path = folder / LOCK
    command = command or " ".join([Path(sys.executable).name, *sys.argv])
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise describe_os_error(err, "write in", folder) from err
        if not _try_lock(fd):
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderLockedError(
                f"{folder} is in use by another run: pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, since {holder.get('since', '?')}, command: "
                f"{holder.get('command', '?')}. Wait for it to finish (or stop it), or "
                "choose another folder"
            )
        try:  # the file may have been removed by a holder that released it meanwhile
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command}
        try:
            os.ftruncate(fd, 0)
            os.write(fd, (json.dumps(info) + "\n").encode())
        except OSError as err:
            raise describe_os_error(err, "write", path) from err
        yield folder
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _read_holder(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode())
    except (OSError, ValueError, AttributeError):
        return {}
