-- nvrmon notifications out: channels, the notifier's grouping state, the durable outbox and every delivery attempt.
-- Only store/channels.py and store/outbox.py read or write them. The notifier's cursor over incident_log is the
-- meta row 'notify_cursor', advanced in the same transaction that writes the outbox rows it caused.
CREATE TABLE IF NOT EXISTS channels (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    kind           TEXT NOT NULL CHECK (kind IN ('apprise', 'webpush')),
    target         TEXT NOT NULL,             -- the Apprise URL, or a Web Push subscription (JSON); a secret
    shown          TEXT NOT NULL,             -- the target with its credentials masked: what lists and pages show
    match_site     TEXT NOT NULL DEFAULT '',  -- empty: any
    match_region   TEXT NOT NULL DEFAULT '',
    match_severity TEXT NOT NULL DEFAULT '',
    owner          TEXT NOT NULL DEFAULT '',  -- who added it (a Web Push channel: the operator who subscribed)
    created        REAL NOT NULL
);

-- What each channel last told about each site (group): the incidents it named and when it said so.
CREATE TABLE IF NOT EXISTS notify_groups (
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    group_key  TEXT NOT NULL,
    region     TEXT NOT NULL,
    site       TEXT NOT NULL,
    members    TEXT NOT NULL DEFAULT '{}',  -- JSON {incident id: [device keys]} as last notified
    sent_at    REAL NOT NULL DEFAULT 0,      -- the last message (first, update, reminder) to this channel
    PRIMARY KEY (channel_id, group_key)
) WITHOUT ROWID;

-- state: waiting (grouping; the message is composed at due_at) -> pending (composed; due for a send attempt at
-- next_at) -> sending (claimed: an attempt is in flight) -> sent | failed (gave up) | unknown (the hub stopped
-- during the send) | skipped (nothing left to say when it came due).
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id INTEGER NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    group_key  TEXT NOT NULL,
    region     TEXT NOT NULL DEFAULT '',
    site       TEXT NOT NULL DEFAULT '',
    kind       TEXT NOT NULL CHECK (kind IN ('group', 'reminder', 'test')),
    state      TEXT NOT NULL CHECK (state IN ('waiting', 'pending', 'sending', 'sent', 'failed', 'unknown', 'skipped')),
    created    REAL NOT NULL,
    due_at     REAL NOT NULL,
    next_at    REAL NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    level      TEXT NOT NULL DEFAULT 'info',  -- failure | warning | success | info (Apprise's notify types)
    title      TEXT NOT NULL DEFAULT '',
    body       TEXT NOT NULL DEFAULT '',
    incidents  TEXT NOT NULL DEFAULT '[]',    -- JSON ids the message names, for the incidents' timelines
    last_error TEXT NOT NULL DEFAULT '',
    done_at    REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE INDEX IF NOT EXISTS outbox_group ON outbox (channel_id, group_key, state);

CREATE TABLE IF NOT EXISTS delivery_attempts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id INTEGER NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    ts        REAL NOT NULL,
    result    TEXT NOT NULL CHECK (result IN ('sent', 'error', 'unknown')),
    error     TEXT NOT NULL DEFAULT '',
    elapsed   REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS delivery_attempts_outbox ON delivery_attempts (outbox_id);
