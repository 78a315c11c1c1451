"""Store, failures: tell a store that refuses writes (disk, file, lock) from work that breaks one of its rules.

The writer retries the first kind until the store accepts it again and drops only the second: which is which depends
on the database engine, so the store says.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import sys

# Primary SQLite result codes that say nothing about the frame: the disk, the file or another process is the cause,
# so the same work will commit once that is fixed.
_STORAGE_CODES = {
    5,  # SQLITE_BUSY: another process held the write lock past busy_timeout
    6,  # SQLITE_LOCKED
    7,  # SQLITE_NOMEM
    8,  # SQLITE_READONLY: file or directory made read-only, or immutable
    10,  # SQLITE_IOERR: disk I/O error (EIO, EFBIG past RLIMIT_FSIZE, immutable files)
    11,  # SQLITE_CORRUPT
    13,  # SQLITE_FULL: database or disk is full
    14,  # SQLITE_CANTOPEN
    15,  # SQLITE_PROTOCOL
}


def conflicts() -> tuple[type[Exception], ...]:
    """A unique or check constraint refused the row, on either backend (a name taken, a rule broken), for
    `except conflicts():`. asyncpg's errors only exist once a store on PostgreSQL imported it."""
    if "asyncpg" not in sys.modules:
        return (sqlite3.IntegrityError,)
    return (sqlite3.IntegrityError, *_pg_errors()[:1])


@functools.cache
def _pg_errors() -> tuple[type[Exception], ...]:
    """asyncpg's constraint error, then the failures that say PostgreSQL is unreachable, restarting, full of
    connections or out of resources: the work itself is fine."""
    import asyncpg

    return (
        asyncpg.IntegrityConstraintViolationError,
        asyncpg.exceptions.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError, ...
        asyncpg.exceptions.CannotConnectNowError,
        asyncpg.exceptions.AdminShutdownError,
        asyncpg.exceptions.CrashShutdownError,
        asyncpg.exceptions.InsufficientResourcesError,  # TooManyConnectionsError, DiskFullError, OutOfMemoryError
        asyncpg.InterfaceError,  # the connection closed under us, or a pool being closed
        asyncpg.InternalClientError,  # a connection left mid-operation by a lost server: a new one works
        asyncpg.exceptions.SerializationError,
        asyncpg.exceptions.DeadlockDetectedError,
        asyncpg.exceptions.LockNotAvailableError,
        asyncpg.exceptions.QueryCanceledError,  # statement_timeout
        asyncpg.exceptions.ReadOnlySQLTransactionError,  # a standby, or default_transaction_read_only
        asyncpg.exceptions.PostgresSystemError,  # PostgreSQL's I/O errors (class 58)
        asyncpg.exceptions.InvalidCachedStatementError,
    )


def is_storage_failure(exc: BaseException) -> bool:
    """True when the store refused for a reason outside the work (retry it); False for a bad item (drop it)."""
    if isinstance(exc, OSError | asyncio.TimeoutError):
        return True
    if "asyncpg" in sys.modules and isinstance(exc, _pg_errors()[1:]):
        return True
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.DataError | sqlite3.ProgrammingError):
        return False
    if isinstance(exc, sqlite3.OperationalError | sqlite3.InternalError):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and isinstance(code, int) and code & 0xFF in _STORAGE_CODES
