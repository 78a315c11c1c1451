"""Stage 3, the database file's safekeeping: online backups, verified restores, and the mark of a hub holding it.

A backup is SQLite's backup API in one step: one read transaction, so the copy is the database as of one commit
(its meta 'seq'), while the hub keeps writing (WAL: a reader never blocks the writer). It is written to a temporary
file beside the target, checked, and renamed into place, so a half-written backup never carries the target's name.

A restore gives the copy a new epoch. Browsers resume from cursors (epoch, seq); the copy keeps the epoch of the
database it was taken from, so without a new one an open page whose cursor is older than the copy's head would be
replayed from rows that are not the history it saw, and one whose cursor lies between the two would miss what the
copy lacks. A new epoch makes every open page take a full refresh instead (live/views.py, catch_up).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from nvrmon.store.database import BUSY_TIMEOUT_MS, SCHEMA_VERSION


class BackupError(Exception):
    """A backup or restore that could not be done as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Copy:
    path: Path
    seq: int
    epoch: str
    size: int
    kept: Path | None = None  # restore: where the replaced database was moved


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".hub-lock")


class HubLock:
    """Held (shared) by every hub process while it has the database open; a restore takes it exclusively.

    An flock, not a pid file: the kernel drops it when the process ends, even on kill -9, so a crashed hub never
    leaves a stale mark that blocks a restore, and a restore in progress keeps a hub from starting on the file.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def hold(cls, db_path: Path) -> HubLock:
        db_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BackupError(
                f"{db_path} is being restored (`nvrmon restore`); start the hub when it is done"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for the message a refused restore prints
        return cls(fd)

    @classmethod
    def exclusive(cls, db_path: Path) -> HubLock:
        fd = os.open(lock_path(db_path), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise BackupError(
                f"a hub is running on {db_path} (pid {pid}): stop it, then restore (a backup needs no stop)"
            ) from None
        return cls(fd)

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = -1


def _connect(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    target = f"file:{path}?mode=ro" if read_only else f"file:{path}"
    db = sqlite3.connect(target, uri=True, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return db


def _describe(db: sqlite3.Connection, path: Path) -> tuple[int, str]:
    """The copy's seq and epoch after checking it is whole and an nvrmon database this version can open."""
    try:
        problems = [str(row[0]) for row in db.execute("PRAGMA integrity_check")]
    except sqlite3.DatabaseError as exc:  # not a database at all, or a header too damaged to check
        problems = [str(exc)]
    if problems != ["ok"]:
        raise BackupError(f"{path} fails PRAGMA integrity_check: {'; '.join(problems[:5])}")
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise BackupError(f"{path} has schema version {version}; this nvrmon knows up to {SCHEMA_VERSION}")
    try:
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('seq', 'epoch')").fetchall())
    except sqlite3.DatabaseError:
        meta = {}
    if "seq" not in meta or "epoch" not in meta:
        raise BackupError(f"{path} is not an nvrmon database (no meta seq and epoch)")
    return int(meta["seq"]), str(meta["epoch"])


def _sync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_into(source: sqlite3.Connection, temporary: Path) -> sqlite3.Connection:
    """SQLite's backup API in one step, into a fresh single-file (rollback journal) database at `temporary`."""
    temporary.unlink(missing_ok=True)
    target = _connect(temporary)
    try:
        source.backup(target)  # pages=-1: one step, one read transaction: the database as of one commit
        target.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
    except BaseException:
        target.close()
        temporary.unlink(missing_ok=True)
        raise
    return target


def backup(db_path: Path, target: Path, *, force: bool = False) -> Copy:
    """A consistent copy of the live database at `target` (refused if it exists, unless `force`)."""
    try:
        return _backup(db_path, target, force)
    except sqlite3.Error as exc:
        raise BackupError(f"backing up {db_path}: {exc}") from exc


def _backup(db_path: Path, target: Path, force: bool) -> Copy:
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path} (pass --db)")
    if target.exists() and not force:
        raise BackupError(f"{target} exists; pass --force to replace it")
    if target.exists() and target.resolve() == db_path.resolve():
        raise BackupError("the backup must not replace the database itself")
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    source = _connect(db_path)
    try:
        copy = _copy_into(source, temporary)
    finally:
        source.close()
    try:
        seq, epoch = _describe(copy, temporary)
    except BaseException:
        copy.close()
        temporary.unlink(missing_ok=True)
        raise
    copy.close()
    _sync(temporary)
    os.replace(temporary, target)
    _sync(target.parent)
    return Copy(target, seq, epoch, target.stat().st_size)


def restore(source_path: Path, db_path: Path) -> Copy:
    """Replace the database with a verified copy of `source_path` under a new epoch; the replaced file is kept."""
    if not source_path.is_file():
        raise BackupError(f"no backup at {source_path}")
    try:
        return _restore(source_path, db_path)
    except sqlite3.Error as exc:
        raise BackupError(f"restoring {source_path}: {exc}") from exc


def _restore(source_path: Path, db_path: Path) -> Copy:
    with contextlib.closing(_connect(source_path, read_only=True)) as source:
        _describe(source, source_path)  # checked before anything is touched
        lock = HubLock.exclusive(db_path)
        try:
            return _replace(source, source_path, db_path)
        finally:
            lock.release()


def _replace(source: sqlite3.Connection, source_path: Path, db_path: Path) -> Copy:
    temporary = db_path.with_name(f".{db_path.name}.restore.partial")
    copy = _copy_into(source, temporary)
    try:
        epoch = secrets.token_hex(4)
        copy.execute("UPDATE meta SET value = ? WHERE key = 'epoch'", (epoch,))
        copy.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('restored_from', ?)",
            (f"{source_path.resolve()} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}",),
        )
        seq, _ = _describe(copy, temporary)
    except BaseException:
        copy.close()
        temporary.unlink(missing_ok=True)
        raise
    copy.close()
    _sync(temporary)
    kept = None
    if db_path.exists():
        kept = db_path.with_name(f"{db_path.name}.before-restore-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        try:
            _fold_wal(db_path)  # fails (database is locked) while another process, a CLI command, has it open
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        # A second name for the old file, then one atomic rename over it: at no moment is there no database at
        # db_path (a crash between two renames would leave none, and the next start would create an empty one).
        os.link(db_path, kept)
    try:
        os.replace(temporary, db_path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        if kept is not None:
            kept.unlink(missing_ok=True)
        raise
    _sync(db_path.parent)
    return Copy(db_path, seq, epoch, db_path.stat().st_size, kept)


def _fold_wal(db_path: Path) -> None:
    """Write the replaced database's WAL into it and remove it: a -wal left beside the restored file would be
    replayed into it (the main file and its WAL must never be separated)."""
    with contextlib.closing(_connect(db_path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode = DELETE")  # ends WAL mode: SQLite removes the -wal and -shm files
    for suffix in ("-wal", "-shm"):
        leftover = db_path.with_name(db_path.name + suffix)
        if leftover.exists() and leftover.stat().st_size > 0 and suffix == "-wal":
            raise BackupError(f"{leftover} could not be folded into {db_path}; nothing was replaced")
        leftover.unlink(missing_ok=True)
