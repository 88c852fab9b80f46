-- Full-text ranking moved to the BM25 index each replica keeps in memory (tuned parameters
-- and field weights ts_rank cannot express). The generated tsvector and the column and
-- functions that fed it go. Catalogue notifications now carry the id of the tool changed,
-- so replicas refresh that one tool in their index instead of re-reading the catalogue.
ALTER TABLE tools DROP COLUMN search_vector;
ALTER TABLE tools DROP COLUMN search_params;
DROP FUNCTION tool_name_words(text);
DROP FUNCTION tool_tags_text(text[]);

CREATE OR REPLACE FUNCTION announce_catalogue_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('tool_catalogue_changed', OLD.id::text);
    ELSE
        PERFORM pg_notify('tool_catalogue_changed', NEW.id::text);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
