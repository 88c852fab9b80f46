-- A tool's second vector, of its description alone: a search raises the document
-- vector's cosine by part of this one's excess. Unsized (`vector`), as it is never indexed:
-- a search through the HNSW index takes its candidates by `embedding` and rescores them
-- with both. Tools stored before it have none; the indexer fills it in the background and
-- they are searched by their document vector meanwhile.
ALTER TABLE tools ADD COLUMN description_embedding vector;

-- Filling a tool's description vector keeps its model: it is announced too, so that replicas
-- searching in memory read it.
DROP TRIGGER tools_embedding_changed ON tools;
CREATE TRIGGER tools_embedding_changed
    AFTER UPDATE OF embedding_model, description_embedding ON tools
    FOR EACH ROW WHEN ((OLD.embedding_model IS DISTINCT FROM NEW.embedding_model
            OR (OLD.description_embedding IS NULL) <> (NEW.description_embedding IS NULL))
        AND OLD.updated_at IS NOT DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION announce_embedding_change();
