-- API keys: only a hash of the secret is kept. A key belongs to one project.
CREATE TABLE api_keys (
    id text COLLATE "C" PRIMARY KEY,
    hash bytea NOT NULL UNIQUE,
    prefix text NOT NULL,
    project text COLLATE "C" NOT NULL,
    name text NOT NULL,
    created_at bigint NOT NULL,
    last_used_at bigint,
    revoked_at bigint
);

CREATE INDEX api_keys_project ON api_keys (project, created_at);
