"""A deliberately bad reverse proxy for tests: it buffers every response whole before passing it on.

That is what a proxy or CDN with response buffering does to an event stream: the browser connects, and then
nothing arrives, ever. Ordinary requests (pages, long-polls) still work, one request per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket


class BufferingProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self.held_stream = False  # an event stream was opened through us (and never reached the client)
        self.serving: set[asyncio.Task[None]] = set()  # held connections, ended (and their sockets closed) by stop()

    async def start(self) -> BufferingProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        sock: socket.socket = self.server.sockets[0]
        self.port = int(sock.getsockname()[1])
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in list(self.serving):
                task.cancel()
            await asyncio.gather(*self.serving, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.serving.add(task)
        task.add_done_callback(self.serving.discard)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            body = await reader.readexactly(int(length.group(1))) if length else b""
            # One request per upstream connection, closed by the upstream when the response is complete.
            head = re.sub(rb"(?im)^connection:[^\r\n]*\r\n", b"", head).replace(
                b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1
            )
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
            upstream_writer.write(head + body)
            await upstream_writer.drain()
            response = bytearray()
            while chunk := await upstream_reader.read(65536):
                response += chunk
                if b"text/event-stream" in response[:1024]:
                    self.held_stream = True
            writer.write(bytes(response))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    w.close()
                    # The socket itself is closed a loop turn later (connection_lost): a test ending right after
                    # stop() saw it as an unclosed transport.
                    with contextlib.suppress(Exception, asyncio.CancelledError):
                        await w.wait_closed()
