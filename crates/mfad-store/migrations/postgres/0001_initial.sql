-- mfad schema, PostgreSQL. The same tables, columns and indexes as the SQLite tree, so one
-- set of SQL (crates/mfad-store/src/sql_store.rs) and one row mapping (rows.rs) serve both.
-- Kept to a portable subset for PostgreSQL-compatible databases (CockroachDB, YugabyteDB):
-- TEXT ULID keys (no sequences), BIGINT Unix-millisecond timestamps, BYTEA blobs, plain
-- b-tree indexes. Ids are prefixed ULIDs of [0-9A-Z], which sort by creation time in any
-- collation, so keyset pagination orders by id.

CREATE TABLE tenants (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    digest      BYTEA   NOT NULL,          -- SHA-256 of the token's secret part
    created_at  BIGINT  NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE factors (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    user_id         TEXT,
    type            TEXT    NOT NULL,
    totp_issuer     TEXT,
    totp_user       TEXT,
    totp_algorithm  TEXT,
    totp_digits     BIGINT,
    totp_period     BIGINT,
    totp_secret     BYTEA,                 -- AES-256-GCM, associated data = factor id
    totp_last_step  BIGINT,                -- replay protection: last accepted time step
    phone_number    TEXT,                  -- E.164
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE INDEX factors_by_user ON factors (tenant_id, user_id, id);

CREATE TABLE challenges (
    id           TEXT    PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    factor_id    TEXT    NOT NULL REFERENCES factors (id) ON DELETE CASCADE,
    code_digest  BYTEA,                    -- peppered HMAC of the code; NULL for TOTP
    expires_at   BIGINT  NOT NULL,
    attempts     BIGINT  NOT NULL DEFAULT 0,
    verified_at  BIGINT,
    created_at   BIGINT  NOT NULL
);

CREATE INDEX challenges_by_factor ON challenges (factor_id);
CREATE INDEX challenges_by_expiry ON challenges (expires_at);
