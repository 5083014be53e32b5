-- FusionAuth Two Factor API. A FusionAuth "method" is a factor filed under a user, so the
-- factors table gains the method id, a display name and the email address of `email`
-- factors; the rest is state that only this API has: users it has seen, recovery codes,
-- one-time codes sent by SMS/email, logins in progress and trusted computers.

ALTER TABLE factors ADD COLUMN email TEXT;          -- `email` factors: trimmed, lower-cased
ALTER TABLE factors ADD COLUMN method_id TEXT;      -- 4 of [A-Z0-9], unique per user
ALTER TABLE factors ADD COLUMN name TEXT;

CREATE UNIQUE INDEX factors_by_method ON factors (tenant_id, user_id, method_id);
CREATE INDEX factors_by_email ON factors (tenant_id, email);
CREATE INDEX factors_by_phone ON factors (tenant_id, phone_number);

-- Users this API has enabled a method for. Taking this row first in a transaction
-- serialises concurrent changes to one user's methods; it also counts consecutive wrong
-- codes across requests (`failures` within a window ending at `failures_reset_at`).
CREATE TABLE two_factor_users (
    tenant_id          TEXT    NOT NULL,
    user_id            TEXT    NOT NULL,
    failures           INTEGER NOT NULL DEFAULT 0,
    failures_reset_at  INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE recovery_codes (
    tenant_id   TEXT    NOT NULL,
    user_id     TEXT    NOT NULL,
    digest      BLOB    NOT NULL,          -- peppered HMAC, context = tenant and user
    sealed      BLOB    NOT NULL,          -- AES-256-GCM, associated data = tenant, user, digest
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id, digest)
);

-- At most one live code per scope: a new send replaces (and so invalidates) the last.
CREATE TABLE two_factor_codes (
    tenant_id   TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    user_id     TEXT,
    digest      BLOB    NOT NULL,          -- peppered HMAC, context = tenant and scope
    payload     TEXT,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, scope)
);

CREATE INDEX two_factor_codes_by_expiry ON two_factor_codes (expires_at);

CREATE TABLE two_factor_logins (
    id              TEXT    PRIMARY KEY,   -- SHA-256 (hex) of the twoFactorId
    tenant_id       TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    application_id  TEXT,
    state           TEXT,                  -- the caller's JSON `state`, echoed at login
    expires_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    sends           INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL
);

CREATE INDEX two_factor_logins_by_expiry ON two_factor_logins (expires_at);

CREATE TABLE two_factor_trusts (
    id              TEXT    PRIMARY KEY,   -- SHA-256 (hex) of the twoFactorTrustId
    tenant_id       TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    application_id  TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);

CREATE INDEX two_factor_trusts_by_expiry ON two_factor_trusts (expires_at);
