-- WebAuthn ceremonies in progress, keyed by their challenge: bound to a tenant and a
-- user, taken (deleted) by the one request that answers them, expiring at `expires_at`.

CREATE TABLE webauthn_ceremonies (
    challenge       TEXT    PRIMARY KEY,   -- base64url
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    user_id         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,      -- registration | authentication
    workflow        TEXT    NOT NULL,
    state           TEXT    NOT NULL,      -- webauthn-rs ceremony state (JSON)
    name            TEXT,
    display_name    TEXT,
    user_agent      TEXT,
    application_id  TEXT,
    login_state     TEXT,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);

CREATE INDEX webauthn_ceremonies_by_expiry ON webauthn_ceremonies (expires_at);
