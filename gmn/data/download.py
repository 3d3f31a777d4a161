"""Fetch missing data files: download, verify the checksum, write then rename.

When a file is missing and cannot be downloaded (no network, ``download=False``), the error
names the folder and the files to put there.
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass
from pathlib import Path

from gmn import GMNError
from gmn.files import atomic_write, file_digest


@dataclass(frozen=True)
class RemoteFile:
    """A file to fetch: its name in the folder, mirror URLs (tried in order), its md5."""

    name: str
    urls: tuple[str, ...]
    md5: str


class ChecksumError(GMNError, RuntimeError):
    """A downloaded or stored file does not have the expected hash."""


def fetch(folder, files: list[RemoteFile], *, download: bool = True, what: str = "data") -> None:
    """Make sure every file in ``files`` is in ``folder``, downloading the missing ones."""
    folder = Path(folder)
    missing = [f for f in files if not (folder / f.name).exists()]
    if not missing:
        return
    failures = []
    if download:
        folder.mkdir(parents=True, exist_ok=True)
        for remote in missing:
            try:
                _download(folder, remote)
            except OSError as error:
                failures.append(f"{remote.name}: {error}")
    still_missing = [f.name for f in missing if not (folder / f.name).exists()]
    if still_missing:
        reason = "; ".join(failures) if failures else "download=False"
        raise FileNotFoundError(
            f"{what}: missing {', '.join(still_missing)} in {folder.resolve()} and could not "
            f"download them ({reason}). Put the files there, e.g. from "
            + ", ".join(f.urls[0] for f in missing if f.name in still_missing)
        )


def _download(folder: Path, remote: RemoteFile) -> None:
    """Fetch ``remote`` into ``folder`` (``gmn.files.atomic_write``: a killed or failed
    download leaves no file under the final name), trying each mirror in turn."""
    errors = []
    for url in remote.urls:

        def write(tmp, url=url):
            with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
            digest = file_digest(tmp, "md5")
            if digest != remote.md5:
                raise ChecksumError(
                    f"{url} gave {remote.name} with md5 {digest}, expected {remote.md5}"
                )

        try:
            atomic_write(folder / remote.name, write)
            return
        except OSError as error:
            errors.append(f"{url}: {error}")
    raise OSError("; ".join(errors))
