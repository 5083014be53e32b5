-- Every factor filed under a user gets its method id when it is enrolled (through either
-- API), so reading a user's methods never writes. This backfills the factors enrolled
-- through the WorkOS API before that, which got theirs lazily, on first sight: 4 random
-- symbols of [A-Z0-9], drawn again while the user already has the draw
-- (`factors_by_method` keeps them unique per user).

DO $$
DECLARE
    r RECORD;
    candidate TEXT;
BEGIN
    FOR r IN SELECT id, tenant_id, user_id FROM factors
             WHERE method_id IS NULL AND user_id IS NOT NULL LOOP
        LOOP
            SELECT string_agg(substr('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
                                     1 + floor(random() * 36)::int, 1), '')
              INTO candidate FROM generate_series(1, 4);
            EXIT WHEN NOT EXISTS (SELECT 1 FROM factors
                                  WHERE tenant_id = r.tenant_id AND user_id = r.user_id
                                    AND method_id = candidate);
        END LOOP;
        UPDATE factors SET method_id = candidate WHERE id = r.id;
    END LOOP;
END $$;
