"""Ingest: the agent WebSocket, its frames and the single writer that turns them into committed changes."""
