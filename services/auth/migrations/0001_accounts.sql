-- Accounts, linked OAuth identities, and the token signing keys. auth owns this
-- database; sessions and refresh tokens live in Redis (they expire by themselves).

CREATE TABLE users (
    id            uuid PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    email         text UNIQUE,
    -- argon2id PHC string; NULL for accounts that only ever logged in through OAuth.
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE oauth_identities (
    provider   text NOT NULL,
    -- The provider's stable user id (GitHub's numeric id, Google's `sub`).
    subject    text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);

-- Ed25519 keys in PKCS#8. Every replica signs with the newest and publishes all of them
-- at /api/auth/jwks, so tokens stay valid across restarts and replicas.
CREATE TABLE signing_keys (
    kid        text PRIMARY KEY,
    pkcs8      bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
