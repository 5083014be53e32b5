-- Every factor filed under a user gets its method id when it is enrolled (through either
-- API), so reading a user's methods never writes. This backfills the factors enrolled
-- through the WorkOS API before that, which got theirs lazily, on first sight.
--
-- Ids are 4 random symbols of [A-Z0-9], unique per user (`factors_by_method`). `UPDATE OR
-- IGNORE` skips a row whose draw collides with an id its user already has, and the next
-- pass draws again; after eight passes a leftover is a ~1e-40 event.

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;

UPDATE OR IGNORE factors SET method_id =
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1) ||
    substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', (abs(random()) % 36) + 1, 1)
WHERE method_id IS NULL AND user_id IS NOT NULL;
