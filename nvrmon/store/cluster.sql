-- Hubs sharing one database (schema version 7): each hub's node id, where it answers, when it started and its last
-- heartbeat. nvrs.hub (an added column, store/database.py) names the hub holding an NVR's agent socket.
CREATE TABLE IF NOT EXISTS hubs (
    node      TEXT PRIMARY KEY,
    address   TEXT NOT NULL DEFAULT '',
    started   REAL NOT NULL,
    heartbeat REAL NOT NULL
);
