"""Blobs as files in a local (or mounted) directory: `STORAGE_BACKEND=file`, `STORAGE_DIR`.

A blob lives at `<root>/ab/cd/abcd...` (its SHA-256), written atomically (temporary file,
fsync, rename), so a reader never sees half a file. Its modification time is its stored
time: storing the same bytes again touches the file instead of rewriting it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from csss_fhir.storage.base import (
    BlobNotFoundError,
    BlobStore,
    StorageError,
    StoredBlob,
    checked_digest,
)


class FileBlobStore(BlobStore):
    backend = "file"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        checked_digest(sha256)
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def _put(self, sha256: str, data: bytes) -> bool:
        target = self.path_for(sha256)
        try:
            os.utime(target)  # already there: only refresh its stored time
            return False
        except FileNotFoundError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return True

    def get(self, sha256: str) -> bytes:
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError as err:
            raise BlobNotFoundError(f"blob {sha256} is not in {self.root}") from err

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()

    def blobs(self) -> Iterator[StoredBlob]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if path.name.startswith(".") or not path.is_file():
                continue
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:  # collected meanwhile
                continue
            yield StoredBlob(path.name, datetime.fromtimestamp(mtime, UTC))

    def delete_if_stored_before(self, sha256: str, cutoff: datetime) -> bool:
        """Move the file aside first, then look at its age: a `put` that touched it before
        the move is seen (and the file goes back); one after the move finds no file and
        writes a new one. Either way a blob a request just stored survives."""
        target = self.path_for(sha256)
        aside = target.with_name(f".collect-{sha256}-{uuid.uuid4().hex}")
        try:
            os.rename(target, aside)
        except FileNotFoundError:
            return False
        if datetime.fromtimestamp(aside.stat().st_mtime, UTC) >= cutoff:
            os.replace(aside, target)
            return False
        aside.unlink()
        return True

    def check(self) -> str:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self.root, prefix=".csss-check-")
            try:
                os.write(fd, b"ok")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(name)
        except OSError as err:
            raise StorageError(f"{self.root} is not writable ({type(err).__name__}); "
                               "check STORAGE_DIR and its permissions") from err
        return f"file: {self.root} is writable"

    def describe(self) -> str:
        return f"file: {self.root}"
