-- nvrmon on PostgreSQL only (nvrmon/store/postgres.py runs it after the translated *.sql scripts): the audit log's
-- append-only rule (audit.sql's SQLite triggers) in plpgsql. Errors carry SQLSTATE 23000 (integrity constraint
-- violation) like SQLite's RAISE(ABORT), so the store tells them from storage failures the same way.
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = '23000';
END;
$$;

CREATE OR REPLACE FUNCTION audit_log_prune_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.ts >= coalesce((SELECT CAST(value AS DOUBLE PRECISION) FROM meta WHERE key = 'audit_horizon'), 0) THEN
        RAISE EXCEPTION 'audit entries are removed only by pruning past the retention' USING ERRCODE = '23000';
    END IF;
    RETURN OLD;
END;
$$;

CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE OR REPLACE TRIGGER audit_log_prune_only BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_prune_only();
CREATE INDEX IF NOT EXISTS cameras_nvr_missing ON cameras (nvr_id, removed, status, missing);
