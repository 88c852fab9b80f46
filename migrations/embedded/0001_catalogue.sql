-- The tool catalogue and the execution log in one SQLite file.
-- Timestamps are microseconds since the Unix epoch; JSON values are stored as text;
-- embeddings are little-endian f32 BLOBs.

CREATE TABLE tools (
    seq             INTEGER PRIMARY KEY,
    id              TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL UNIQUE,
    description     TEXT NOT NULL,
    category        TEXT NOT NULL,
    tags            TEXT NOT NULL DEFAULT '[]',
    input_schema    TEXT NOT NULL,
    output_schema   TEXT,
    version         TEXT NOT NULL,
    implementation  TEXT NOT NULL,
    metadata        TEXT NOT NULL DEFAULT '{}',
    is_active       INTEGER NOT NULL DEFAULT 1,
    embedding       BLOB,
    embedding_model TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    -- Written by the store: the name split into words, the tags joined by spaces, and the
    -- input parameters' names and descriptions.
    search_name     TEXT NOT NULL,
    search_tags     TEXT NOT NULL,
    search_params   TEXT NOT NULL DEFAULT ''
);

CREATE INDEX tools_category_idx ON tools (category);
CREATE INDEX tools_is_active_idx ON tools (is_active);

CREATE VIRTUAL TABLE tools_fts USING fts5(
    search_name, search_tags, description, search_params,
    content = 'tools', content_rowid = 'seq',
    tokenize = 'porter unicode61'
);

CREATE TRIGGER tools_fts_insert AFTER INSERT ON tools BEGIN
    INSERT INTO tools_fts (rowid, search_name, search_tags, description, search_params)
    VALUES (new.seq, new.search_name, new.search_tags, new.description, new.search_params);
END;

CREATE TRIGGER tools_fts_delete AFTER DELETE ON tools BEGIN
    INSERT INTO tools_fts (tools_fts, rowid, search_name, search_tags, description, search_params)
    VALUES ('delete', old.seq, old.search_name, old.search_tags, old.description, old.search_params);
END;

CREATE TRIGGER tools_fts_update AFTER UPDATE OF search_name, search_tags, description, search_params ON tools BEGIN
    INSERT INTO tools_fts (tools_fts, rowid, search_name, search_tags, description, search_params)
    VALUES ('delete', old.seq, old.search_name, old.search_tags, old.description, old.search_params);
    INSERT INTO tools_fts (rowid, search_name, search_tags, description, search_params)
    VALUES (new.seq, new.search_name, new.search_tags, new.description, new.search_params);
END;

CREATE TABLE tool_executions (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    tool_id      TEXT NOT NULL,
    tool_name    TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('success', 'error', 'timeout')),
    arguments    TEXT NOT NULL,
    result       TEXT,
    error        TEXT,
    duration_ms  REAL NOT NULL,
    started_at   INTEGER NOT NULL,
    completed_at INTEGER NOT NULL
);

CREATE INDEX tool_executions_tool_started_idx ON tool_executions (tool_id, started_at DESC);
CREATE INDEX tool_executions_started_idx ON tool_executions (started_at DESC);
CREATE INDEX tool_executions_name_started_idx ON tool_executions (tool_name, started_at DESC);

CREATE TABLE registry_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
