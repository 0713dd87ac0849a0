-- Video uploads: their length, read by ffprobe when they arrive.
ALTER TABLE media ADD COLUMN duration_ms bigint;
