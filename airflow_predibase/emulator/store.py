"""Where an emulator keeps its state: one store object per app, never a module global.

Documents are JSON objects addressed by (kind, key); blobs are raw bytes (uploaded files,
batch results). Both stores hand out fresh copies, so a handler that edits a document
without saving it changes nothing, in memory exactly as in SQLite. Lifecycles are derived
from timestamps, so nothing but these rows needs to survive a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Protocol

Doc = dict[str, Any]


class Store(Protocol):
    """The persistence the emulator needs, and nothing more."""

    def get(self, kind: str, key: str) -> Doc | None: ...
    def put(self, kind: str, key: str, doc: Doc) -> None: ...
    def delete(self, kind: str, key: str) -> bool: ...
    def list(self, kind: str) -> list[Doc]:
        """All documents of `kind`, oldest first."""
        ...

    def count(self, kind: str) -> int: ...
    def get_blob(self, key: str) -> bytes | None: ...
    def put_blob(self, key: str, data: bytes) -> None: ...
    def delete_blob(self, key: str) -> None: ...
    def clear(self) -> None: ...
    def close(self) -> None: ...


def _dump(doc: Doc) -> str:
    return json.dumps(doc, separators=(",", ":"))


class MemoryStore:
    """State that lives as long as the process."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, str]] = {}
        self._blobs: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, key: str) -> Doc | None:
        raw = self._docs.get(kind, {}).get(key)
        return None if raw is None else dict(json.loads(raw))

    def put(self, kind: str, key: str, doc: Doc) -> None:
        raw = _dump(doc)
        with self._lock:
            self._docs.setdefault(kind, {})[key] = raw

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            return self._docs.get(kind, {}).pop(key, None) is not None

    def list(self, kind: str) -> list[Doc]:
        with self._lock:
            raws = list(self._docs.get(kind, {}).values())
        return [dict(json.loads(raw)) for raw in raws]

    def count(self, kind: str) -> int:
        return len(self._docs.get(kind, {}))

    def get_blob(self, key: str) -> bytes | None:
        return self._blobs.get(key)

    def put_blob(self, key: str, data: bytes) -> None:
        with self._lock:
            self._blobs[key] = data

    def delete_blob(self, key: str) -> None:
        with self._lock:
            self._blobs.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._docs.clear()
            self._blobs.clear()

    def close(self) -> None:
        """Nothing to release."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, key TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, data BLOB NOT NULL);
"""


class SqliteStore:
    """State in a SQLite file, so that a restarted emulator carries on where it stopped."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The server's event loop thread and a test's thread may both touch the store;
        # the lock serialises them, so one connection can be shared.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)

    def get(self, kind: str, key: str) -> Doc | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM docs WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, kind: str, key: str, doc: Doc) -> None:
        # An upsert keeps the rowid, so listing order stays creation order.
        with self._lock:
            self._db.execute(
                "INSERT INTO docs (kind, key, body) VALUES (?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body",
                (kind, key, _dump(doc)),
            )

    def delete(self, kind: str, key: str) -> bool:
        with self._lock:
            cursor = self._db.execute("DELETE FROM docs WHERE kind = ? AND key = ?", (kind, key))
        return cursor.rowcount > 0

    def list(self, kind: str) -> list[Doc]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM docs WHERE kind = ? ORDER BY rowid", (kind,)
            ).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def count(self, kind: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT COUNT(*) FROM docs WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])

    def get_blob(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM blobs WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_blob(self, key: str, data: bytes) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO blobs (key, data) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET data = excluded.data",
                (key, data),
            )

    def delete_blob(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM blobs WHERE key = ?", (key,))

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM docs")
            self._db.execute("DELETE FROM blobs")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_store(state_file: Path | None) -> Store:
    """SQLite when a state file is given, memory otherwise."""
    return MemoryStore() if state_file is None else SqliteStore(state_file)
