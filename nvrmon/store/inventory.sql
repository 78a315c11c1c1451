-- The fleet inventory (docs/inventory.md): declared sites and the region their NVRs default to. Declared NVRs and
-- cameras are rows of nvrs and cameras themselves (columns declared, tags, expected_cameras, missing: added by
-- nvrmon/store/inventory_rows.py's migrate), so every page, count and replay sees them with no second source.
CREATE TABLE IF NOT EXISTS sites (
    name   TEXT PRIMARY KEY,
    region TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
