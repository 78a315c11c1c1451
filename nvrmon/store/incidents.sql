-- Incidents (issue 11): one outage, however many devices it took down, with its timeline. Rows carry updated_seq like
-- the fleet's, written in the hub's writer transaction that caused them, so pages replay them from a cursor.
CREATE TABLE IF NOT EXISTS incidents (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    scope           TEXT NOT NULL CHECK (scope IN ('site', 'nvr', 'camera')),
    -- site:<region>/<site>, nvr:<id> or camera:<id>: at most one incident is open per key (the index below), so a
    -- hub restart or a replayed change can never open a second one for the same outage.
    scope_key       TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    severity        TEXT NOT NULL CHECK (severity IN ('critical', 'major', 'minor')),
    region          TEXT NOT NULL DEFAULT '',
    site            TEXT NOT NULL DEFAULT '',
    title           TEXT NOT NULL,
    opened_at       REAL NOT NULL,
    acknowledged_at REAL,
    acknowledged_by TEXT NOT NULL DEFAULT '',
    ack_note        TEXT NOT NULL DEFAULT '',
    resolved_at     REAL,
    -- Resolved because a whole-site incident took its devices over (a notifier says "merged", not "recovered").
    merged_into     INTEGER,
    updated_seq     INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_open ON incidents (scope_key) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS incidents_group ON incidents (region, site) WHERE state != 'resolved';
CREATE INDEX IF NOT EXISTS incidents_updated_seq ON incidents (updated_seq);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at);

-- The devices of an incident. No foreign key to nvrs/cameras: their tombstones are pruned, incidents are history.
CREATE TABLE IF NOT EXISTS incident_devices (
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    device_key   TEXT NOT NULL,  -- nvr:<id> | camera:<id>
    nvr_id       INTEGER NOT NULL,
    camera_id    INTEGER,
    name         TEXT NOT NULL,
    hostname     TEXT NOT NULL,
    status       TEXT NOT NULL,  -- offline | degraded | unstable | recovered | removed
    down_since   REAL NOT NULL,
    recovered_at REAL,
    PRIMARY KEY (incident_id, device_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS incident_devices_key ON incident_devices (device_key);

-- The durable order of what happened to incidents (the notifier follows it by id); each row is written in the same
-- transaction as the change it records.
CREATE TABLE IF NOT EXISTS incident_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    ts          REAL NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('opened', 'devices', 'acknowledged', 'comment', 'resolved', 'notified')),
    actor       TEXT NOT NULL DEFAULT '',
    note        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS incident_log_incident ON incident_log (incident_id, id);

-- Maintenance windows (silences): devices they cover raise no incidents while a window is active.
CREATE TABLE IF NOT EXISTS maintenance (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    match_camera INTEGER,
    match_nvr    TEXT NOT NULL DEFAULT '',
    match_site   TEXT NOT NULL DEFAULT '',
    match_region TEXT NOT NULL DEFAULT '',
    starts_at    REAL NOT NULL,
    ends_at      REAL,
    days         TEXT NOT NULL DEFAULT '',  -- recurring weekly: "0,2,4" (Monday = 0); empty: one span
    time_from    TEXT NOT NULL DEFAULT '',
    time_to      TEXT NOT NULL DEFAULT '',
    tz           TEXT NOT NULL DEFAULT 'UTC',
    reason       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   REAL NOT NULL
);
