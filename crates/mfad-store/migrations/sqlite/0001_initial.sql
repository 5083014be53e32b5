-- mfad schema, SQLite. Timestamps are Unix milliseconds; ids are prefixed ULIDs, which
-- sort by creation time, so keyset pagination orders by id.

CREATE TABLE tenants (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    digest      BLOB    NOT NULL,          -- SHA-256 of the token's secret part
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE factors (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    user_id         TEXT,
    type            TEXT    NOT NULL,
    totp_issuer     TEXT,
    totp_user       TEXT,
    totp_algorithm  TEXT,
    totp_digits     INTEGER,
    totp_period     INTEGER,
    totp_secret     BLOB,                  -- AES-256-GCM, associated data = factor id
    totp_last_step  INTEGER,               -- replay protection: last accepted time step
    phone_number    TEXT,                  -- E.164
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE INDEX factors_by_user ON factors (tenant_id, user_id, id);

CREATE TABLE challenges (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    factor_id    TEXT    NOT NULL REFERENCES factors (id) ON DELETE CASCADE,
    code_digest  BLOB,                     -- peppered HMAC of the code; NULL for TOTP
    expires_at   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    verified_at  INTEGER,
    created_at   INTEGER NOT NULL
);

CREATE INDEX challenges_by_factor ON challenges (factor_id);
CREATE INDEX challenges_by_expiry ON challenges (expires_at);
