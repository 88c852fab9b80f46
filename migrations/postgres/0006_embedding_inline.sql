-- A tool's row is a little over 2 kB with its 384-dimension vector (1.5 kB), so PostgreSQL
-- moved the vector out of line (pgvector's default storage is EXTERNAL): every vector read,
-- by a scan or for the similarity of an index hit, cost extra lookups in the TOAST table, and
-- below some thousands of tools the planner's sequential scans paid that for every row.
-- MAIN keeps the vector in the row and lets the other columns (schemas, implementation) go
-- out of line first; a vector too large for any row still can. Rows written from now on are
-- stored so; existing ones move when next written.
ALTER TABLE tools ALTER COLUMN embedding SET STORAGE MAIN;
