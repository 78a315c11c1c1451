"""Stage 5, fan-out: how much one client has not taken yet, and whether it still takes anything."""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import socket
import struct
import termios
from asyncio import WriteTransport


def kernel_unsent(fd: int) -> int:
    """Bytes in the socket's kernel send queue (Linux SIOCOUTQ); 0 where that can't be read."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0])
    except OSError:
        return 0


def give_back_memory() -> None:
    """Return freed heap to the system (glibc malloc_trim). The buffers of streams just cut off are freed, but
    glibc keeps freed heap for reuse, so the hub's RSS stayed at its peak for good after a crowd of stuck clients."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL(None).malloc_trim(0)


class Backlog:
    """The bytes a connection holds for its client: the server's write buffer plus the kernel's send queue.

    The kernel queue matters most: it grows to megabytes (autotuned) before the server's own buffer holds a byte,
    so a client that stopped reading after a few changes shows nothing in the transport at all. Progress is
    measured, not guessed from the size: what was queued at the last look, plus what the stream has sent since,
    minus what is queued now, is what the client took meanwhile (framing bytes only make that an underestimate).
    """

    __slots__ = ("transport", "fd", "sent", "_seen_sent", "_queued", "stuck_since")

    def __init__(self, transport: WriteTransport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1
        self.sent = 0  # body bytes the stream handed to the server
        self._seen_sent = 0
        self._queued = 0
        self.stuck_since = 0.0  # when the client last took something while bytes waited for it; 0: nothing waits

    def queued(self) -> int:
        if self.transport.is_closing():
            return 0
        kernel = kernel_unsent(self.fd) if self.fd >= 0 else 0
        return self.transport.get_write_buffer_size() + kernel

    def stalled(self, now: float, limit: float) -> bool:
        """Look once (the broadcaster's housekeeping does, every second): True once bytes have waited for this
        client and it has taken none of them for `limit` seconds."""
        if self._queued == 0 and self.sent == self._seen_sent:
            return False  # nothing waited at the last look and nothing was sent since: nothing can wait now
        queued = self.queued()
        taken = self._queued + (self.sent - self._seen_sent) - queued
        self._queued, self._seen_sent = queued, self.sent
        if queued == 0:
            self.stuck_since = 0.0
        elif taken > 0 or not self.stuck_since:
            self.stuck_since = now
        return bool(self.stuck_since) and now - self.stuck_since > limit

    def abort(self) -> None:
        """Reset the connection and drop everything queued for it. Not a close: asyncio's close() waits until the
        client took the transport's buffer, which a stuck client never does; and even abort() only closes the
        socket, whose kernel queue the system then keeps trying to deliver (FIN behind megabytes nobody reads, the
        client still ESTABLISHED). A zero linger time makes that close a reset that discards the kernel queue."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None and self.fd >= 0:
            with contextlib.suppress(OSError):  # already gone
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()
