-- Tenant-bound JWT verification keys: a bearer JWT acts only in the tenant whose key
-- verified it. HS256 secrets are AES-256-GCM sealed (associated data = key id); public
-- keys are stored as the one PEM block or JWK they came in.

CREATE TABLE jwt_keys (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL REFERENCES tenants (id),
    kid         TEXT,                      -- selects the key among its tenant's (rotation)
    alg         TEXT    NOT NULL,          -- the one algorithm it verifies
    kind        TEXT    NOT NULL,          -- hs256 | pem | jwk
    material    BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE UNIQUE INDEX jwt_keys_by_kid ON jwt_keys (tenant_id, kid) WHERE kid IS NOT NULL;
