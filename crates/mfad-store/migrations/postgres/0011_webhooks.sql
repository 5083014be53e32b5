-- Webhooks (issue 12, docs/WEBHOOKS.md): endpoints, what each subscribed to, and the
-- durable outbox its deliveries wait in.
--
-- The outbox is filled in the transaction that writes each event (one INSERT … SELECT
-- from `webhook_subscriptions`, whose primary key makes it an index probe when nothing is
-- subscribed), so a committed change always has its deliveries. A dispatcher takes an
-- endpoint by writing itself into `lease_owner` / `lease_until`, delivers that endpoint's
-- pending rows oldest first, and settles each only while the lease is still its own.

CREATE TABLE webhook_endpoints (
    id              TEXT    PRIMARY KEY,
    tenant_id       TEXT    NOT NULL REFERENCES tenants (id),
    url             TEXT    NOT NULL,
    format          TEXT    NOT NULL,   -- workos | fusionauth
    allow_insecure  BIGINT  NOT NULL,   -- 0 | 1
    secret          BYTEA   NOT NULL,   -- the signing secret, sealed under the master key
    created_at      BIGINT  NOT NULL,
    lease_owner     TEXT,               -- the dispatcher delivering it now, if any
    lease_until     BIGINT,             -- its lease's end; after a release, when it ended
    -- The key that sealed `secret` (0x01 ‖ key id ‖ …), as migration 0008 does for the
    -- other sealed values: `mfad keys status|rotate` count and find them by index.
    secret_key_id   BYTEA GENERATED ALWAYS AS (substr(secret, 2, 4)) STORED
);

CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant_id, id);
CREATE INDEX webhook_endpoints_by_secret_key ON webhook_endpoints (secret_key_id);

-- One row per (endpoint, event name). The tenant is repeated so the fan-out of an event
-- is one primary-key range lookup, with no join.
CREATE TABLE webhook_subscriptions (
    tenant_id    TEXT NOT NULL,
    event_name   TEXT NOT NULL,
    endpoint_id  TEXT NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, event_name, endpoint_id)
);

CREATE INDEX webhook_subscriptions_by_endpoint ON webhook_subscriptions (endpoint_id);

-- One row per (endpoint, event). `id` increases with insertion (an identity: never
-- reused), which is the delivery order per endpoint. A row leaves `pending` once: as
-- `delivered`, or as `failed` after the attempt cap. Deleting an endpoint deletes its
-- deliveries; purging an event (retention) deletes whatever deliveries it still has.
CREATE TABLE webhook_outbox (
    id               BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    endpoint_id      TEXT    NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id         TEXT    NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    state            TEXT    NOT NULL,   -- pending | delivered | failed
    attempts         BIGINT  NOT NULL,
    next_attempt_at  BIGINT  NOT NULL,
    last_status      BIGINT,             -- the receiver's last HTTP status
    last_error       TEXT,               -- why the last attempt got no answer
    created_at       BIGINT  NOT NULL,
    settled_at       BIGINT
);

-- The head of each endpoint's queue (small: only pending rows).
CREATE INDEX webhook_outbox_pending ON webhook_outbox (endpoint_id, id) WHERE state = 'pending';
-- `mfad webhook deliveries`, and the cascade from an endpoint.
CREATE INDEX webhook_outbox_by_endpoint ON webhook_outbox (endpoint_id, id);
-- The cascade from an event.
CREATE INDEX webhook_outbox_by_event ON webhook_outbox (event_id);
-- Retention purges settled rows oldest first.
CREATE INDEX webhook_outbox_settled ON webhook_outbox (settled_at) WHERE settled_at IS NOT NULL;
