-- Idempotent retries (mfad_core::idempotency): one row per caller and Idempotency-Key,
-- claimed by an insert before the request runs (so one request, on any node, runs it)
-- and filled in with the response after. Responses can hold secrets (an enrolled TOTP
-- secret and its QR code), so they are sealed (associated data = id), and rotated with
-- the other sealed values (`response_key_id`, as in 0008).

CREATE TABLE idempotency_keys (
    id              TEXT    PRIMARY KEY,   -- SHA-256 (hex) of tenant, caller and key
    tenant_id       TEXT    NOT NULL,
    request_digest  BYTEA   NOT NULL,      -- SHA-256 of method, path and body
    claim           TEXT    NOT NULL,      -- random token of the execution holding it
    lease_until     BIGINT  NOT NULL,      -- without a response by then, it may be taken over
    status          BIGINT,                -- NULL while the request runs
    response        BYTEA,                 -- sealed content type and body
    response_key_id BYTEA
        GENERATED ALWAYS AS (substr(response, 2, 4)) STORED,
    created_at      BIGINT  NOT NULL,
    expires_at      BIGINT  NOT NULL
);

CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at);
CREATE INDEX idempotency_keys_by_response_key ON idempotency_keys (response_key_id);
