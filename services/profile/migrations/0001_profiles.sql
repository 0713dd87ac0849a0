-- Profiles and the follow graph. profile owns this database; no other service reads it
-- (feed asks over HTTP).

-- Trigram matching for user search (GET /api/profiles/search).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE profiles (
    -- The auth service's user id; profile trusts it from the verified access token.
    user_id         uuid PRIMARY KEY,
    username        text NOT NULL UNIQUE,
    display_name    text NOT NULL DEFAULT '',
    bio             text NOT NULL DEFAULT '',
    -- Denormalised counts, updated in the same transaction as `follows`, so a profile
    -- read (and feed's celebrity check) is one row, not a COUNT(*).
    follower_count  bigint NOT NULL DEFAULT 0,
    following_count bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX profiles_search_trgm ON profiles
    USING gin ((username || ' ' || display_name) gin_trgm_ops);

CREATE TABLE follows (
    follower_id uuid NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
    followee_id uuid NOT NULL REFERENCES profiles (user_id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);

-- Followers of a user, in keyset order (the primary key serves "following").
CREATE INDEX follows_by_followee ON follows (followee_id, follower_id);
