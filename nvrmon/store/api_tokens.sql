-- nvrmon API tokens: bearer tokens for scripts on /api (docs/security.md). Only store/api_tokens.py reads or writes
-- them. The token itself is never stored: only its SHA-256 (it carries 256 random bits; see access/api_tokens.py).
CREATE TABLE IF NOT EXISTS api_tokens (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL COLLATE NOCASE,
    scope      TEXT NOT NULL CHECK (scope IN ('read', 'operator')),
    token_hash TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,             -- the token's first characters, to recognise it in lists
    created    REAL NOT NULL,
    created_by TEXT NOT NULL DEFAULT '',
    last_used  REAL NOT NULL DEFAULT 0,   -- written at most once a minute per token (not on every request)
    revoked    REAL NOT NULL DEFAULT 0
);
-- A name names one live token; a revoked token's name may be given to a new one.
CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_live_name ON api_tokens (name) WHERE revoked = 0;
