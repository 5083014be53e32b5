-- Online master-key rotation. Every sealed value names the key that sealed it in its own
-- bytes (blob = 0x01 ‖ key id (4) ‖ nonce ‖ ciphertext); these generated columns expose
-- that id, so counting the values a key still seals (`mfad keys status`, the start-up
-- check) and finding those left to rotate are index scans. Being generated, they can
-- never disagree with the blob, whoever writes it.
-- Recovery codes are sealed and peppered under the same key, in the same statement.

ALTER TABLE factors ADD COLUMN secret_key_id BLOB
    GENERATED ALWAYS AS (substr(totp_secret, 2, 4)) VIRTUAL;
CREATE INDEX factors_by_secret_key ON factors (secret_key_id);

ALTER TABLE recovery_codes ADD COLUMN sealed_key_id BLOB
    GENERATED ALWAYS AS (substr(sealed, 2, 4)) VIRTUAL;
CREATE INDEX recovery_codes_by_sealed_key ON recovery_codes (sealed_key_id);

-- Only HS256 secrets are sealed; public keys are stored as they came.
ALTER TABLE jwt_keys ADD COLUMN sealed_key_id BLOB
    GENERATED ALWAYS AS (CASE WHEN kind = 'hs256' THEN substr(material, 2, 4) END) VIRTUAL;
CREATE INDEX jwt_keys_by_sealed_key ON jwt_keys (sealed_key_id);
