-- Earlier definitions of each tool: an update that changes a definition copies the one it
-- replaces here first. They go when the tool is deleted.
CREATE TABLE tool_versions (
    seq             INTEGER PRIMARY KEY,
    tool_id         TEXT NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    version         TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT NOT NULL,
    category        TEXT NOT NULL,
    tags            TEXT NOT NULL,
    input_schema    TEXT NOT NULL,
    output_schema   TEXT,
    implementation  TEXT NOT NULL,
    metadata        TEXT NOT NULL,
    embedding_model TEXT,
    changed_at      INTEGER NOT NULL
);

CREATE INDEX tool_versions_tool_idx ON tool_versions (tool_id, seq);
