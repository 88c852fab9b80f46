-- Tools are served from a cache in each replica, and a tool as served shows the model of its
-- embedding. Storing an embedding leaves updated_at alone (it is no change of the catalogue),
-- so it is announced on a channel of its own: replicas drop the tool from their cache without
-- re-indexing it or telling MCP clients that the tool list changed. A change of updated_at in
-- the same statement is announced on the catalogue's channel already.
CREATE FUNCTION announce_embedding_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tool_embedding_changed', NEW.id::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tools_embedding_changed
    AFTER UPDATE OF embedding_model ON tools
    FOR EACH ROW WHEN (OLD.embedding_model IS DISTINCT FROM NEW.embedding_model
        AND OLD.updated_at IS NOT DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION announce_embedding_change();
