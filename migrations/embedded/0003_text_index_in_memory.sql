-- Full-text ranking moved to the BM25 index the store keeps in memory (tuned parameters and
-- field weights FTS5 cannot express): the FTS5 table, its triggers and the columns written
-- only for it go. SQLite cannot drop those columns in place, so the table is rebuilt.
DROP TRIGGER tools_fts_insert;
DROP TRIGGER tools_fts_delete;
DROP TRIGGER tools_fts_update;
DROP TABLE tools_fts;

CREATE TABLE tools_rebuilt (
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
    updated_at      INTEGER NOT NULL
);

INSERT INTO tools_rebuilt (seq, id, name, description, category, tags, input_schema,
    output_schema, version, implementation, metadata, is_active, embedding, embedding_model,
    created_at, updated_at)
SELECT seq, id, name, description, category, tags, input_schema, output_schema, version,
    implementation, metadata, is_active, embedding, embedding_model, created_at, updated_at
FROM tools;

DROP TABLE tools;
ALTER TABLE tools_rebuilt RENAME TO tools;

CREATE INDEX tools_category_idx ON tools (category);
CREATE INDEX tools_is_active_idx ON tools (is_active);
CREATE INDEX tools_active_name_idx ON tools (is_active, name);
CREATE INDEX tools_category_active_name_idx ON tools (category, is_active, name);
