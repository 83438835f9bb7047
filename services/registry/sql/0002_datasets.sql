-- 0002: datasets. One row per distinct file (content-addressed by SHA-256), names that point
-- to a file, and uploads between begin and commit (their own table: the model uploads' sweep
-- must never see these objects, which live in another bucket).

CREATE TABLE datasets (
    sha256      TEXT PRIMARY KEY,
    object_name TEXT NOT NULL UNIQUE,
    format      TEXT NOT NULL CHECK (format IN ('csv', 'parquet')),
    size_bytes  INTEGER NOT NULL,
    rows        INTEGER NOT NULL,
    symbols     TEXT NOT NULL,  -- JSON list
    start_at    REAL,
    end_at      REAL,
    frequency   TEXT NOT NULL,
    valid       INTEGER NOT NULL,
    n_errors    INTEGER NOT NULL,
    n_warnings  INTEGER NOT NULL,
    report      TEXT NOT NULL,  -- JSON ValidationReport, as computed when the file arrived
    source      TEXT NOT NULL DEFAULT '',
    created_at  REAL NOT NULL,
    created_by  TEXT NOT NULL
);

-- A name points to one file; uploading other bytes under the name moves it (the old file stays
-- addressable as sha256:<hex>, which is what lineage records).
CREATE TABLE dataset_names (
    name       TEXT PRIMARY KEY,
    sha256     TEXT NOT NULL REFERENCES datasets(sha256),
    updated_at REAL NOT NULL,
    updated_by TEXT NOT NULL
);
CREATE INDEX dataset_names_by_sha256 ON dataset_names (sha256);

CREATE TABLE dataset_uploads (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    format      TEXT NOT NULL,
    source      TEXT NOT NULL DEFAULT '',
    object_name TEXT NOT NULL UNIQUE,
    principal   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'aborted')),
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX dataset_uploads_by_state ON dataset_uploads (state, expires_at);
