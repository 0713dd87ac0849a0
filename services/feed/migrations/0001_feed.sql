-- Posts, likes and comments. feed owns this database; the follow graph lives in
-- profile and is asked for over HTTP.

CREATE TABLE posts (
    -- Ids only grow, so they double as the timeline order and the pagination cursor.
    id              bigserial PRIMARY KEY,
    author_id       uuid NOT NULL,
    -- Usernames never change in socialnet, so the post keeps its author's name and a
    -- read needs no call to profile.
    author_username text NOT NULL,
    body            text NOT NULL,
    like_count      bigint NOT NULL DEFAULT 0,
    comment_count   bigint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Pull-side timeline reads (celebrity merge, rebuilds) and user timelines.
CREATE INDEX posts_by_author ON posts (author_id, id DESC);
CREATE INDEX posts_by_author_username ON posts (author_username, id DESC);

CREATE TABLE likes (
    post_id    bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id)
);

CREATE TABLE comments (
    id              bigserial PRIMARY KEY,
    post_id         bigint NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    author_id       uuid NOT NULL,
    author_username text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX comments_by_post ON comments (post_id, id);
