-- Earlier definitions of each tool: an update that changes a definition copies the one it
-- replaces here first, in the same transaction. They go when the tool is deleted.
CREATE TABLE tool_versions (
    seq             bigserial PRIMARY KEY,
    tool_id         uuid NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    version         text NOT NULL,
    name            text NOT NULL,
    description     text NOT NULL,
    category        text NOT NULL,
    tags            text[] NOT NULL,
    input_schema    jsonb NOT NULL,
    output_schema   jsonb,
    implementation  jsonb NOT NULL,
    metadata        jsonb NOT NULL,
    embedding_model text,
    changed_at      timestamptz NOT NULL
);

CREATE INDEX tool_versions_tool_idx ON tool_versions (tool_id, seq);
