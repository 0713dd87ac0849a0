-- An email address is contact information, not an identity: registering with one that
-- another account gave must not answer differently (that answer would tell anyone
-- whether an address has an account here). Addresses are unique only once verified.
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_key;
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;
CREATE UNIQUE INDEX users_verified_email ON users (lower(email)) WHERE email_verified;
