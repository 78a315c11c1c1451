-- Device health (protocol `health` messages): the latest facts per NVR and per camera, replaced by every message
-- (latest wins), as JSON of models.NvrHealth / models.CameraHealth. Not stamped with updated_seq: the rows that
-- show them (nvrs, cameras) are, when something they show changes.
CREATE TABLE IF NOT EXISTS nvr_health (
    nvr_id   INTEGER PRIMARY KEY REFERENCES nvrs (id),
    facts    TEXT NOT NULL,
    received REAL NOT NULL
);

CREATE TABLE IF NOT EXISTS camera_health (
    camera_id INTEGER PRIMARY KEY REFERENCES cameras (id),
    nvr_id    INTEGER NOT NULL REFERENCES nvrs (id),
    facts     TEXT NOT NULL,
    received  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS camera_health_nvr ON camera_health (nvr_id);
