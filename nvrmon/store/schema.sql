-- nvrmon schema. Every row that a page shows carries updated_seq: the sequence number of the transaction that last
-- changed it, so "what changed since cursor N" is one indexed range scan (replay from state, not from a log).
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS nvrs (
    id             INTEGER PRIMARY KEY,
    hostname       TEXT NOT NULL UNIQUE,
    device_name    TEXT NOT NULL DEFAULT '',
    region         TEXT NOT NULL DEFAULT '',
    site           TEXT NOT NULL DEFAULT '',
    model          TEXT NOT NULL DEFAULT '',
    firmware       TEXT NOT NULL DEFAULT '',
    ip_address     TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL DEFAULT 'offline' CHECK (status IN ('online', 'stale', 'offline', 'unknown')),
    status_reason  TEXT NOT NULL DEFAULT '',
    last_seen      REAL NOT NULL DEFAULT 0,
    status_changed REAL NOT NULL DEFAULT 0,
    stats          TEXT NOT NULL DEFAULT '{}',
    -- Flapping: set while the NVR changes status too often; cleared after a quiet window.
    unstable       INTEGER NOT NULL DEFAULT 0,
    -- The agent's numbered-frame session and the last frame of it committed here (duplicates are dropped).
    agent_session  TEXT NOT NULL DEFAULT '',
    agent_seq      INTEGER NOT NULL DEFAULT 0,
    updated_seq    INTEGER NOT NULL,
    -- A removed NVR stays as a tombstone (like a removed camera) so a replay can drop it from open pages.
    removed        INTEGER NOT NULL DEFAULT 0,
    -- Why the NVR is degraded, in words (derived by the hub from its health facts); '' while it is not.
    degraded       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS nvrs_status ON nvrs (status);
CREATE INDEX IF NOT EXISTS nvrs_updated_seq ON nvrs (updated_seq);

CREATE TABLE IF NOT EXISTS cameras (
    id             INTEGER PRIMARY KEY,
    nvr_id         INTEGER NOT NULL REFERENCES nvrs (id),
    ext_id         TEXT NOT NULL,
    name           TEXT NOT NULL DEFAULT '',
    ip_address     TEXT NOT NULL DEFAULT '',
    status         TEXT NOT NULL CHECK (status IN ('online', 'offline')),
    status_changed REAL NOT NULL DEFAULT 0,
    -- A camera dropped from its NVR's list stays as a tombstone so a replay can remove it from open pages.
    removed        INTEGER NOT NULL DEFAULT 0,
    updated_seq    INTEGER NOT NULL,
    -- Why it is offline, in the agent's words ('' while online); what a probe measured of its stream (JSON);
    -- why it is degraded, in words, derived by the hub from health facts ('' while it is not). 'degraded' is a shown
    -- status, never a stored one: status keeps what the agent said, so a degraded camera is still online.
    status_reason  TEXT NOT NULL DEFAULT '',
    detail         TEXT NOT NULL DEFAULT '{}',
    degraded       TEXT NOT NULL DEFAULT '',
    UNIQUE (nvr_id, ext_id)
);
CREATE INDEX IF NOT EXISTS cameras_updated_seq ON cameras (updated_seq);
CREATE INDEX IF NOT EXISTS cameras_nvr_status ON cameras (nvr_id, removed, status);

CREATE TABLE IF NOT EXISTS events (
    id        INTEGER PRIMARY KEY,
    seq       INTEGER NOT NULL,
    ts        REAL NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('status', 'alert')),
    severity  TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'error', 'critical')),
    nvr_id    INTEGER REFERENCES nvrs (id),
    camera_id INTEGER REFERENCES cameras (id),
    message   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_seq ON events (seq);
CREATE INDEX IF NOT EXISTS events_nvr ON events (nvr_id, id);
CREATE INDEX IF NOT EXISTS events_camera ON events (camera_id, id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
-- The camera list's default order (NVR, then camera name) walks this index instead of sorting 30,000 rows.
CREATE INDEX IF NOT EXISTS cameras_nvr_name ON cameras (nvr_id, removed, name);
CREATE INDEX IF NOT EXISTS nvrs_region ON nvrs (region, status);
