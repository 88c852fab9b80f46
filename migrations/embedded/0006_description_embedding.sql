-- A tool's second vector, of its description alone (little-endian f32, as
-- `embedding`): a search raises the document vector's cosine by part of this one's excess.
-- Tools stored before it have none; the indexer fills it in the background and they are
-- searched by their document vector meanwhile.
ALTER TABLE tools ADD COLUMN description_embedding BLOB;
