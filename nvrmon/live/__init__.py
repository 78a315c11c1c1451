"""Live: after commit, render each change once per open view and fan the bytes out over SSE and long-poll."""
