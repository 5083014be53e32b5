-- Send limits (SMS-pumping defence). `sends` records each admitted SMS or email for a day;
-- destinations are keyed digests, never numbers or addresses in clear. A tenant's row in
-- `send_limit_tenants` is taken first in every admission, which serialises admissions of
-- one tenant across nodes; it also holds the tenant's own country rules.

CREATE TABLE send_limit_tenants (
    tenant_id          TEXT    PRIMARY KEY NOT NULL,
    allowed_countries  TEXT,               -- comma-separated ISO 3166 alpha-2; NULL = none
    denied_countries   TEXT,
    locked_at          BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);

CREATE TABLE sends (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT    NOT NULL,
    channel      TEXT    NOT NULL,          -- 'sms' | 'email'
    destination  TEXT    NOT NULL,          -- peppered HMAC of the number or address, hex
    prefix       TEXT,                      -- '+' country code and next 3 digits (SMS)
    end_user     TEXT,                      -- user who asked with a JWT, if any
    sent_at      BIGINT  NOT NULL           -- unix ms
);

CREATE INDEX sends_by_destination ON sends (tenant_id, destination, sent_at);
CREATE INDEX sends_by_channel ON sends (tenant_id, channel, sent_at);
CREATE INDEX sends_by_prefix ON sends (tenant_id, prefix, sent_at);
CREATE INDEX sends_by_end_user ON sends (tenant_id, end_user, sent_at);
