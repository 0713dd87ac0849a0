-- Signed-in browsers. web owns this database; no other service reads it. The cookie
-- holds a random session id; only its SHA-256 is stored, so a copy of this table signs
-- nobody in. The access and refresh tokens stay here: they never reach the page.

CREATE TABLE sessions (
    id_hash      text PRIMARY KEY,
    username     text NOT NULL,
    access       text NOT NULL,
    refresh      text NOT NULL,
    -- The token every state-changing form and fetch of this session must carry.
    csrf         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);

CREATE INDEX sessions_expiry ON sessions (expires_at);
