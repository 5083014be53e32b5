//! Recovery codes: regenerated as a set, and shown (FusionAuth's deprecated retrieve)
//! from their sealed copies. Their format is [`crate::recovery`]'s; they are checked and
//! used up by [`crate::verify`].

use mfad_crypto::Zeroizing;

use crate::error::{CoreError, Field, Reason};
use crate::events::{EventKind, Subject};
use crate::ids::{TenantId, UserId};
use crate::recovery;
use crate::service::Service;
use crate::store::Store;

impl<S: Store> Service<S> {
    /// Replaces a user's recovery codes with ten new ones and returns them. The user must
    /// have a method: codes exist to recover one.
    pub async fn regenerate_recovery_codes(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Zeroizing<String>>, CoreError> {
        self.require_user(tenant, user).await?;
        if self.user_methods(tenant, user).await?.is_empty() {
            return Err(CoreError::invalid(Field::Methods, Reason::Required));
        }
        let now = self.clock.now();
        let set = recovery::new_set(&self.keyring, tenant, user, now)?;
        let events = self.event(
            tenant,
            EventKind::RecoveryCodesGenerated,
            Subject::RecoveryCodes {
                user_id: user.clone(),
                count: u32::try_from(set.records.len()).unwrap_or(u32::MAX),
            },
        )?;
        self.store
            .replace_recovery_codes(tenant, user, &set.records, now, &events)
            .await?;
        Ok(set.plain)
    }

    /// A user's remaining recovery codes (FusionAuth's deprecated retrieve), opened from
    /// their sealed copies.
    pub async fn remaining_recovery_codes(
        &self,
        tenant: &TenantId,
        user: &UserId,
    ) -> Result<Vec<Zeroizing<String>>, CoreError> {
        self.require_user(tenant, user).await?;
        let mut out = Vec::new();
        for stored in self.store.recovery_codes(tenant, user).await? {
            let code = self.keyring.open(
                &stored.sealed,
                &recovery::seal_context(tenant, user, &stored.digest),
            )?;
            let text = std::str::from_utf8(&code).map_err(|_| {
                CoreError::Internal(format!("corrupt recovery code of user {}", user.as_str()))
            })?;
            out.push(recovery::display(text));
        }
        // Stored order is by digest, which says nothing; show them sorted, as a list.
        out.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        Ok(out)
    }
}
