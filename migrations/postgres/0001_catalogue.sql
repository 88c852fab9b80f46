-- The tool catalogue and the execution log.
-- The embedding column's dimension is set at start-up from the embedder (see PostgresStore),
-- together with its HNSW index, so no dimension is written here.

CREATE EXTENSION IF NOT EXISTS vector;

-- The words of an identifier for full-text search: the alphanumeric runs as written, then
-- with camelCase split, so github.createIssue gives 'github createIssue github create Issue'.
CREATE FUNCTION tool_name_words(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
  SELECT regexp_replace(name, '[^[:alnum:]]+', ' ', 'g') || ' ' ||
         regexp_replace(
           regexp_replace(name, '([[:lower:][:digit:]])([[:upper:]])', '\1 \2', 'g'),
           '[^[:alnum:]]+', ' ', 'g')
$$;

-- array_to_string is only STABLE; tags are plain text, so joining them is immutable.
CREATE FUNCTION tool_tags_text(tags text[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$ SELECT array_to_string(tags, ' ') $$;

CREATE TABLE tools (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    description     text NOT NULL,
    category        text NOT NULL,
    tags            text[] NOT NULL DEFAULT '{}',
    input_schema    jsonb NOT NULL,
    output_schema   jsonb,
    version         text NOT NULL,
    implementation  jsonb NOT NULL,
    metadata        jsonb NOT NULL DEFAULT '{}',
    is_active       boolean NOT NULL DEFAULT true,
    embedding       vector,
    embedding_model text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    -- Written by the store: the input parameters' names and descriptions.
    search_params   text NOT NULL DEFAULT '',
    search_vector   tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('english', tool_name_words(name)), 'A') ||
        setweight(to_tsvector('english', coalesce(tool_tags_text(tags), '')), 'B') ||
        setweight(to_tsvector('english', description), 'C') ||
        setweight(to_tsvector('english', search_params), 'D')
    ) STORED
);

CREATE INDEX tools_search_vector_idx ON tools USING gin (search_vector);
CREATE INDEX tools_tags_idx ON tools USING gin (tags);
CREATE INDEX tools_category_idx ON tools (category);
CREATE INDEX tools_is_active_idx ON tools (is_active);

CREATE TABLE tool_executions (
    id           uuid PRIMARY KEY,
    -- No foreign key: the history of a deleted tool is kept.
    tool_id      uuid NOT NULL,
    tool_name    text NOT NULL,
    status       text NOT NULL CHECK (status IN ('success', 'error', 'timeout')),
    arguments    jsonb NOT NULL,
    result       jsonb,
    error        text,
    duration_ms  double precision NOT NULL,
    started_at   timestamptz NOT NULL,
    completed_at timestamptz NOT NULL
);

CREATE INDEX tool_executions_tool_started_idx ON tool_executions (tool_id, started_at DESC);
CREATE INDEX tool_executions_started_idx ON tool_executions (started_at DESC);
CREATE INDEX tool_executions_name_started_idx ON tool_executions (tool_name, started_at DESC);

-- Facts about the stored vectors (dimension, model), checked at start-up.
CREATE TABLE registry_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);
