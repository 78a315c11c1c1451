-- Hubs sharing one database (docs/deploy.md): each hub process renews its lease row; one whose heartbeat is older
-- than the lease is dead, and the first live hub to notice takes over its NVRs (ingest/cluster.py).
CREATE TABLE IF NOT EXISTS hubs (
    node      TEXT PRIMARY KEY,
    address   TEXT NOT NULL DEFAULT '',
    started   REAL NOT NULL,
    heartbeat REAL NOT NULL
);
