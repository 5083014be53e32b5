-- Passkeys (FusionAuth WebAuthn API). A tenant's relying party, and the credentials
-- registered under its users. No secret is stored: `credential` is webauthn-rs's
-- credential (COSE public key, counter, flags) as JSON; `sign_count` repeats its counter
-- so a use can compare-and-set it in one statement.

CREATE TABLE webauthn_configs (
    tenant_id        TEXT    PRIMARY KEY REFERENCES tenants (id),
    rp_id            TEXT    NOT NULL,
    rp_name          TEXT    NOT NULL,
    origins          TEXT    NOT NULL,   -- newline-separated origins
    attestation      TEXT    NOT NULL,   -- none | direct
    trust_store_pem  TEXT,               -- CA certificates for direct attestation
    updated_at       BIGINT  NOT NULL
);

CREATE TABLE webauthn_credentials (
    id                TEXT    PRIMARY KEY,   -- UUID, FusionAuth's credential id
    tenant_id         TEXT    NOT NULL REFERENCES tenants (id),
    user_id           TEXT    NOT NULL,
    credential_id     TEXT    NOT NULL,      -- the authenticator's id, base64url
    user_handle       TEXT    NOT NULL,
    name              TEXT,
    display_name      TEXT,
    user_agent        TEXT,
    algorithm         BIGINT  NOT NULL,      -- COSE algorithm
    sign_count        BIGINT  NOT NULL,
    rp_id             TEXT    NOT NULL,
    attestation_type  TEXT    NOT NULL,
    user_verified     BIGINT  NOT NULL,
    backup_eligible   BIGINT  NOT NULL,
    transports        TEXT    NOT NULL,      -- comma-separated
    workflow          TEXT    NOT NULL,
    credential        TEXT    NOT NULL,
    created_at        BIGINT  NOT NULL,
    last_used_at      BIGINT
);

CREATE UNIQUE INDEX webauthn_credentials_by_credential_id
    ON webauthn_credentials (tenant_id, credential_id);
CREATE INDEX webauthn_credentials_by_user
    ON webauthn_credentials (tenant_id, user_id, created_at);
