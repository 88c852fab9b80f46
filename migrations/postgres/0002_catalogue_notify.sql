-- Announces every change of the catalogue (a tool added, edited, switched on or off, deleted)
-- on the channel `tool_catalogue_changed`, whichever replica or client made it. Replicas
-- LISTEN and tell their connected MCP clients that the tool list changed (PostgreSQL folds
-- identical notifications of one transaction into one). Storing an
-- embedding does not touch updated_at and stays silent.
CREATE FUNCTION announce_catalogue_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('tool_catalogue_changed', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER tools_catalogue_changed_insert_delete
    AFTER INSERT OR DELETE ON tools
    FOR EACH ROW EXECUTE FUNCTION announce_catalogue_change();

CREATE TRIGGER tools_catalogue_changed_update
    AFTER UPDATE ON tools
    FOR EACH ROW WHEN (OLD.updated_at IS DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION announce_catalogue_change();
