-- The method each user last completed a two-factor login with, so every method list can
-- mark it `lastUsed` as FusionAuth does. One row per user; a deleted factor's row is
-- simply never matched.
CREATE TABLE last_used_methods (
    tenant_id  TEXT    NOT NULL,
    user_id    TEXT    NOT NULL,
    factor_id  TEXT    NOT NULL,
    used_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);
