-- nvrmon audit log: who did what, when, from where. Append-only: rows are never updated, and deleted only by pruning
-- (store/audit.py moves meta 'audit_horizon' forward and deletes what is older, in one transaction); the triggers
-- refuse anything else, whichever process or tool tries.
CREATE TABLE IF NOT EXISTS audit_log (
    id      INTEGER PRIMARY KEY,
    ts      REAL NOT NULL,
    actor   TEXT NOT NULL,            -- a user name, "token:NAME" (API token), "cli:USER" (command line)
    action  TEXT NOT NULL,            -- dotted verb: login, login.failed, api_token.create, user.disable, ...
    target  TEXT NOT NULL DEFAULT '', -- what it was done to: a user, a token, an NVR hostname
    detail  TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT ''  -- the client address (the browser's behind a trusted proxy); "local" for the CLI
);
CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log (ts);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, ts);

CREATE TRIGGER IF NOT EXISTS audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

CREATE TRIGGER IF NOT EXISTS audit_log_prune_only BEFORE DELETE ON audit_log
WHEN OLD.ts >= coalesce((SELECT CAST(value AS REAL) FROM meta WHERE key = 'audit_horizon'), 0)
BEGIN
    SELECT RAISE(ABORT, 'audit entries are removed only by pruning past the retention');
END;
