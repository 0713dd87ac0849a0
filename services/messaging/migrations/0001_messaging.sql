-- Conversations, their members with read markers, and messages numbered per conversation.
CREATE TABLE conversations (
    id            BIGSERIAL PRIMARY KEY,
    -- The two usernames of a one-to-one conversation, sorted and joined by a newline, so
    -- that the same pair always finds the same conversation; NULL for groups.
    direct_key    TEXT UNIQUE,
    last_seq      BIGINT NOT NULL DEFAULT 0,
    last_activity TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE members (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    username        TEXT NOT NULL,
    read_seq        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, username)
);
CREATE INDEX members_by_username ON members (username, conversation_id);

CREATE TABLE messages (
    conversation_id BIGINT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             BIGINT NOT NULL,
    sender          TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, seq),
    UNIQUE (conversation_id, sender, client_id)
);
