-- nvrmon security tables: operator accounts and their sessions, agent tokens, embed tokens. Only store/credentials.py
-- and store/tokens.py read or write them. Secrets are never stored: tokens and session ids are kept as SHA-256 hashes,
-- passwords as argon2id.
CREATE TABLE IF NOT EXISTS users (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role             TEXT NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    password_hash    TEXT NOT NULL,
    created          REAL NOT NULL,
    password_changed REAL NOT NULL,
    disabled         REAL NOT NULL DEFAULT 0  -- when an admin disabled it (0: enabled); it can't log in meanwhile
);

CREATE TABLE IF NOT EXISTS sessions (
    id        TEXT PRIMARY KEY,  -- SHA-256 of the id in the cookie, so a copy of the database logs no one in
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created   REAL NOT NULL,
    last_seen REAL NOT NULL,
    remote    TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);

CREATE TABLE IF NOT EXISTS agent_tokens (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('nvr', 'enroll')),
    hostname   TEXT,                      -- the one NVR an 'nvr' token speaks for; NULL for enrollment tokens
    token_hash TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,             -- the token's first characters, to recognise it in lists and logs
    created    REAL NOT NULL,
    expires    REAL NOT NULL DEFAULT 0,   -- 0: never
    uses_left  INTEGER,                   -- enrollment tokens: registrations left
    revoked    REAL NOT NULL DEFAULT 0,
    last_used  REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS agent_tokens_hostname ON agent_tokens (hostname);

CREATE TABLE IF NOT EXISTS embed_tokens (
    id         INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    view       TEXT NOT NULL CHECK (view IN ('kpis', 'nvrs', 'nvr')),
    nvr_id     INTEGER,                   -- view 'nvr': which NVR
    region     TEXT,                      -- view 'nvrs': only this region's NVRs (NULL: all)
    origins    TEXT NOT NULL DEFAULT '[]', -- JSON list of origins allowed to frame it or read it with CORS
    label      TEXT NOT NULL DEFAULT '',
    created    REAL NOT NULL,
    expires    REAL NOT NULL,
    revoked    REAL NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL DEFAULT ''
);
