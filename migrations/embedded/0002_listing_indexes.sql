-- Listings filter on is_active (and often category) and order by name. Without an index in
-- that order SQLite reads and sorts every row, embeddings and schemas included, for each
-- page; with it a page reads only its own rows and a count reads only the index.
CREATE INDEX tools_active_name_idx ON tools (is_active, name);
CREATE INDEX tools_category_active_name_idx ON tools (category, is_active, name);
