"""The blob store's contract: content-addressed bytes (scan images, report PDFs) by SHA-256.

Every backend keeps the same promises:

- `put` is idempotent: storing bytes that are already there rewrites nothing, but refreshes
  the blob's stored time, so the garbage collector's grace period counts from the last
  request that (re)used it (`lifetime.py`).
- A reader never sees half a blob: each backend writes atomically (rename, one statement,
  one PUT).
- Nothing is deleted because one transaction failed: another request may have stored the
  same bytes and committed a row naming them in the meantime (issue 15 #6). Unreferenced
  blobs are removed only by `csss storage gc`, through `delete_if_stored_before`.
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

BACKENDS = ("file", "postgresql", "s3")
_DIGEST = re.compile(r"[0-9a-f]{64}")


class StorageError(Exception):
    """The blob store cannot be reached or used; the message says what to fix."""


class BlobNotFoundError(StorageError, LookupError):
    """No blob is stored under this SHA-256."""


def checked_digest(sha256: str) -> str:
    """`sha256` if it is a lower-case SHA-256 hex digest; ValueError otherwise."""
    if not isinstance(sha256, str) or not _DIGEST.fullmatch(sha256):
        raise ValueError(f"{sha256!r} is not a SHA-256 hex digest (64 characters 0-9a-f)")
    return sha256


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StoredBlob:
    """A blob as the store lists it: its name and when it was last stored (UTC)."""

    sha256: str
    stored_at: datetime


class BlobStore(ABC):
    """Content-addressed blob storage; one subclass per backend."""

    backend: str = ""

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store `data`; return its SHA-256 and whether this call wrote it.

        Bytes already stored are not written again; their stored time is refreshed.
        """
        digest = digest_of(data)
        return digest, self._put(digest, data)

    @abstractmethod
    def _put(self, sha256: str, data: bytes) -> bool:
        """Write `data` under `sha256` unless it is there (then refresh its stored time);
        True when this call wrote it."""

    @abstractmethod
    def get(self, sha256: str) -> bytes:
        """The blob's bytes. Raises BlobNotFoundError."""

    @abstractmethod
    def exists(self, sha256: str) -> bool: ...

    @abstractmethod
    def blobs(self) -> Iterator[StoredBlob]:
        """Every stored blob, in no particular order."""

    @abstractmethod
    def delete_if_stored_before(self, sha256: str, cutoff: datetime) -> bool:
        """Delete the blob if it was last stored before `cutoff`; True when deleted.

        The age is checked as close to the deletion as the backend allows, so a request
        that re-stores the blob (a `put` refreshes its time) keeps it.
        """

    @abstractmethod
    def check(self) -> str:
        """Prove the store can be read and written (leaving nothing behind) and say where
        the blobs are (no secrets). Raises StorageError naming what to fix."""

    @abstractmethod
    def describe(self) -> str:
        """Where the blobs are, for messages (no secrets)."""

    def count(self) -> int:
        return sum(1 for _ in self.blobs())
