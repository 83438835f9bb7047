-- 0001: the catalog. Times are UTC epoch seconds (REAL); JSON columns hold what is never
-- filtered on. Metrics and tags live in their own tables so filters and sorts run on indexes.

CREATE TABLE models (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    -- The per-model version sequence, allocated inside the registering transaction: numbers
    -- are unique and ordered, and never reused after a delete.
    next_version INTEGER NOT NULL DEFAULT 1,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);

CREATE TABLE versions (
    id              INTEGER PRIMARY KEY,
    model_id        INTEGER NOT NULL REFERENCES models(id),
    version         INTEGER NOT NULL,
    created_at      REAL NOT NULL,
    created_by      TEXT NOT NULL,
    format          TEXT NOT NULL,
    trained_at      REAL,
    data_start      REAL,
    data_end        REAL,
    size_bytes      INTEGER NOT NULL,
    sha256          TEXT NOT NULL,
    object_name     TEXT NOT NULL,
    upload_id       TEXT NOT NULL,
    idempotency_key TEXT,
    details         TEXT NOT NULL,  -- JSON: features, hyperparameters, lineage, description
    UNIQUE (model_id, version),
    UNIQUE (model_id, idempotency_key)
);
CREATE INDEX versions_by_object ON versions (object_name);
CREATE INDEX versions_by_upload ON versions (upload_id);
CREATE INDEX versions_by_created ON versions (model_id, created_at, id);
CREATE INDEX versions_by_trained ON versions (model_id, trained_at, id);
CREATE INDEX versions_by_data_start ON versions (model_id, data_start, id);
CREATE INDEX versions_by_data_end ON versions (model_id, data_end, id);

-- model_id is repeated here so "this model's versions ordered by metric X" is one index range.
CREATE TABLE metrics (
    version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    model_id   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    value      REAL NOT NULL,
    PRIMARY KEY (version_id, name)
) WITHOUT ROWID;
CREATE INDEX metrics_by_value ON metrics (model_id, name, value, version_id);

CREATE TABLE tags (
    version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    PRIMARY KEY (version_id, key)
) WITHOUT ROWID;
CREATE INDEX tags_by_value ON tags (key, value, version_id);

-- Where each alias points now...
CREATE TABLE aliases (
    model_id   INTEGER NOT NULL REFERENCES models(id),
    alias      TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES versions(id),
    updated_at REAL NOT NULL,
    PRIMARY KEY (model_id, alias)
) WITHOUT ROWID;
CREATE INDEX aliases_by_version ON aliases (version_id);

-- ...and where it pointed before, newest last: rollback pops this stack. Entries of deleted
-- versions go with them, so a rollback walks past a version that no longer exists.
CREATE TABLE alias_history (
    id         INTEGER PRIMARY KEY,
    model_id   INTEGER NOT NULL,
    alias      TEXT NOT NULL,
    version_id INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE
);
CREATE INDEX alias_history_by_alias ON alias_history (model_id, alias, id);
CREATE INDEX alias_history_by_version ON alias_history (version_id);

CREATE TABLE audit (
    id           INTEGER PRIMARY KEY,
    at           REAL NOT NULL,
    principal    TEXT NOT NULL,
    model        TEXT NOT NULL,
    action       TEXT NOT NULL,
    alias        TEXT NOT NULL DEFAULT '',
    from_version INTEGER,
    to_version   INTEGER,
    reason       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_by_model ON audit (model, id);

-- An upload between begin and commit. Its object is protected from the orphan sweep only while
-- 'pending'; commit flips it to 'committed' in the same transaction that inserts the version.
CREATE TABLE uploads (
    id          TEXT PRIMARY KEY,
    model       TEXT NOT NULL,
    object_name TEXT NOT NULL UNIQUE,
    request     TEXT NOT NULL,  -- JSON BeginUpload
    principal   TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('pending', 'committed', 'aborted')),
    created_at  REAL NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX uploads_by_state ON uploads (state, expires_at);

-- Events written in the transaction that causes them, published after commit (and again after
-- a crash): no alias move without its event. msg_id dedupes a re-publish in the stream.
CREATE TABLE outbox (
    id      INTEGER PRIMARY KEY,
    subject TEXT NOT NULL,
    msg_id  TEXT NOT NULL,
    payload BLOB NOT NULL
);
