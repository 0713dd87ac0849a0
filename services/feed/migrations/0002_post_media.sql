-- A post's images: what media said about each when the post was made (its id, the
-- original's URL, the thumbnails' URLs). Files are content-addressed and never change,
-- so the snapshot stays true.
ALTER TABLE posts ADD COLUMN media jsonb NOT NULL DEFAULT '[]'::jsonb;
