-- Brute-force throttling (see mfad_core::verify). Each factor counts its consecutive wrong
-- codes, across challenges, sends and both APIs, next to the TOTP step it is read with, so
-- a verification reads the count with its challenge and records the outcome in the same
-- statement that uses the step. FusionAuth's code checks count per user too, with the
-- same policy: `two_factor_users.failures` becomes a consecutive count (the windowed
-- count it held is dropped; `failures_reset_at` is no longer used).
-- `last_failure_at` is Unix milliseconds, 0 when there is no failure.

ALTER TABLE factors ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE factors ADD COLUMN last_failure_at INTEGER NOT NULL DEFAULT 0;

ALTER TABLE two_factor_users ADD COLUMN last_failure_at INTEGER NOT NULL DEFAULT 0;
UPDATE two_factor_users SET failures = 0;
