-- What storing a record changed or left out of what the tool returned, and why.
ALTER TABLE tool_executions ADD COLUMN note TEXT;
