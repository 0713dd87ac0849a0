-- One row per upload. The original is stored under its content's SHA-256, so the same
-- bytes uploaded twice are one object (and two rows, one per upload).
CREATE TABLE media (
    id         uuid PRIMARY KEY,
    owner      text NOT NULL,
    kind       text NOT NULL,
    sha256     text NOT NULL,
    bytes      bigint NOT NULL,
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'ready', 'failed')),
    reason     text,
    width      integer,
    height     integer,
    variants   text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_sha256 ON media (sha256);

-- The processing queue: a job is written in the same transaction as its row, so an
-- acknowledged upload always has its job. A worker leases one with FOR UPDATE SKIP LOCKED;
-- a worker that dies lets its lease run out, and the job is taken again.
CREATE TABLE media_jobs (
    media_id    uuid PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE,
    attempts    integer NOT NULL DEFAULT 0,
    lease_until timestamptz NOT NULL DEFAULT now(),
    -- The producer span's context, for the processing span's link.
    context     jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX media_jobs_lease ON media_jobs (lease_until);
