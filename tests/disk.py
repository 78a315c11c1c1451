"""Real storage failures for tests: a small tmpfs that can be filled to the last byte and freed again."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def mount_tmpfs(where: Path, size: str) -> str:
    """'' when mounted, else why not (not root, no CAP_SYS_ADMIN in this container, no mount binary)."""
    if shutil.which("mount") is None:
        return "no mount command"
    where.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    return "" if result.returncode == 0 else f"mount -t tmpfs failed: {result.stderr.strip()}"


def fill(directory: Path) -> None:
    """Write zeros until the filesystem has no byte left (unbuffered, so nothing is pending at close)."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (65536, 512, 1):
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)


@contextmanager
def small_disk(where: Path, size: str = "16m") -> Iterator[Path]:
    """A tmpfs mounted at `where` for the block (skips the test when this machine cannot mount one)."""
    why = mount_tmpfs(where, size)
    if why:
        pytest.skip(f"a small tmpfs is needed for a real full disk ({why})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
