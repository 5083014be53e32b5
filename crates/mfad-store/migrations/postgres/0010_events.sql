-- Audit events (issue 12): one row per security-relevant change, written in the same
-- transaction as the change. `data` is the payload as the Events API serves it (JSON
-- text; never a secret, code or full destination). Ids are ULIDs that increase with
-- creation, so `(tenant_id, id)` is both the listing order and the cursor.

CREATE TABLE events (
    id          TEXT    PRIMARY KEY,
    tenant_id   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    created_at  BIGINT NOT NULL,
    data        TEXT    NOT NULL
);

CREATE INDEX events_by_tenant ON events (tenant_id, id);
-- Retention purges the oldest first.
CREATE INDEX events_by_time ON events (created_at);
