-- Availability history (issue 11): every device's state as intervals, written in the hub's writer transaction that
-- changed it (alerts/history.py), so an interval closes and the next opens at the very commit of the transition.
CREATE TABLE IF NOT EXISTS device_history (
    id          INTEGER PRIMARY KEY,
    device_key  TEXT NOT NULL,  -- nvr:<id> | camera:<id>
    nvr_id      INTEGER NOT NULL,
    camera_id   INTEGER,
    -- Where the device was during the interval (an NVR that moves site starts a new interval), so a report rolls
    -- each stretch of time up to the site it happened at.
    region      TEXT NOT NULL DEFAULT '',
    site        TEXT NOT NULL DEFAULT '',
    -- up | stale | degraded | down | parent_down (a camera whose NVR is offline) | unknown | hub_down (no hub ran)
    state       TEXT NOT NULL CHECK (state IN ('up', 'stale', 'degraded', 'down', 'parent_down', 'unknown', 'hub_down')),
    maintenance INTEGER NOT NULL DEFAULT 0,  -- 1: an active maintenance window covered the device
    started_at  REAL NOT NULL,
    ended_at    REAL  -- NULL: the device's current interval
);
-- At most one open interval per device: a replayed or repeated change can never open a second.
CREATE UNIQUE INDEX IF NOT EXISTS device_history_open ON device_history (device_key) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS device_history_device ON device_history (device_key, started_at);
CREATE INDEX IF NOT EXISTS device_history_span ON device_history (started_at, ended_at);
