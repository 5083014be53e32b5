//! Factors: enrollment (through either API), lookup, listing, deletion, and the
//! operator's view of a factor's throttle state.

use mfad_crypto::Zeroizing;
use mfad_otp::Algorithm;

use crate::enrollment;
use crate::error::{CoreError, Entity, Field, FieldError, Reason, StoreError};
use crate::events::{ChallengeView, EventKind, EventRecord, FactorView, Subject};
use crate::ids::{FactorId, MethodId, TenantId, UserId};
use crate::metrics::{Event, Outcome};
use crate::model::{
    Challenge, Factor, FactorDetails, FactorType, FailureCount, Order, Page, TotpFactor,
};
use crate::phone::PhoneNumber;
use crate::service::{MAX_LABEL_LEN, Service};
use crate::store::Store;
use crate::verify::Gate;

/// What to enroll.
#[derive(Debug, Clone)]
pub enum NewFactor {
    /// An authenticator app; `secret` imports an existing base32 secret.
    Totp {
        /// Issuer shown by the app.
        issuer: String,
        /// Account name shown by the app.
        user: String,
        /// Caller-supplied base32 secret, if importing.
        secret: Option<Zeroizing<String>>,
    },
    /// A phone number, in any international notation.
    Sms {
        /// The number as the caller wrote it.
        phone_number: String,
    },
    /// Codes the caller delivers.
    GenericOtp,
}

impl NewFactor {
    /// The type of factor it makes.
    pub fn factor_type(&self) -> FactorType {
        match self {
            NewFactor::Totp { .. } => FactorType::Totp,
            NewFactor::Sms { .. } => FactorType::Sms,
            NewFactor::GenericOtp => FactorType::GenericOtp,
        }
    }
}

/// Secrets returned once, at enrollment, and never again.
#[derive(Debug)]
pub struct TotpSecrets {
    /// Unpadded base32.
    pub secret: Zeroizing<String>,
    /// `otpauth://` Key URI.
    pub uri: Zeroizing<String>,
    /// `data:image/png;base64,…` QR code of `uri`.
    pub qr_code: Zeroizing<String>,
}

/// A newly enrolled factor.
#[derive(Debug)]
pub struct Enrolled {
    /// The stored factor.
    pub factor: Factor,
    /// For TOTP, what the authenticator app needs.
    pub totp: Option<TotpSecrets>,
}

/// A listing request in cursor terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    /// Page size, 1 to 100.
    pub limit: u32,
    /// Sort order by creation time.
    pub order: Order,
    /// Return items that come before this id in `order`.
    pub before: Option<FactorId>,
    /// Return items that come after this id in `order`.
    pub after: Option<FactorId>,
}

/// Attempts at drawing a method id no other factor of the user has (36^4 ids per user:
/// a collision is rare and simply retried).
const METHOD_ID_ATTEMPTS: usize = 8;

impl<S: Store> Service<S> {
    /// Enrolls a factor, optionally for a user. TOTP secrets are returned only here.
    pub async fn enroll(
        &self,
        tenant: &TenantId,
        user_id: Option<UserId>,
        new: NewFactor,
    ) -> Result<Enrolled, CoreError> {
        let kind = new.factor_type();
        let result = async {
            let (mut factor, totp) = self.build_factor(tenant, user_id, new)?;
            if let FactorDetails::Sms { phone } = &factor.details {
                // A factor that could never receive a code is not created.
                self.permit_country(tenant, phone).await?;
            }
            self.insert_with_method_id(&mut factor, None).await?;
            Ok(Enrolled { factor, totp })
        }
        .await;
        self.observe(Event::Enrollment {
            kind,
            outcome: Outcome::of(&result),
        });
        result
    }

    /// Enrolls a TOTP factor for a user and opens its first challenge in one transaction
    /// (WorkOS's user-management enrollment).
    pub async fn enroll_with_challenge(
        &self,
        tenant: &TenantId,
        user_id: UserId,
        new: NewFactor,
    ) -> Result<(Enrolled, Challenge), CoreError> {
        let kind = new.factor_type();
        let result = async {
            let (mut factor, totp) = self.build_factor(tenant, Some(user_id), new)?;
            let challenge = self.new_challenge(&factor, None)?;
            self.insert_with_method_id(&mut factor, Some(&challenge))
                .await?;
            Ok((Enrolled { factor, totp }, challenge))
        }
        .await;
        let outcome = Outcome::of(&result);
        self.observe(Event::Enrollment { kind, outcome });
        self.observe(Event::Challenge { kind, outcome });
        result
    }

    /// Stores a factor; one filed under a user gets its method id now, so both APIs name
    /// it from the start and reading a user's methods never writes.
    async fn insert_with_method_id(
        &self,
        factor: &mut Factor,
        first_challenge: Option<&Challenge>,
    ) -> Result<(), CoreError> {
        if factor.user_id.is_none() {
            let events = self.enrollment_events(factor, first_challenge)?;
            return Ok(self
                .store
                .insert_factor(factor, first_challenge, &events)
                .await?);
        }
        for attempt in 1..=METHOD_ID_ATTEMPTS {
            factor.method_id = Some(MethodId::generate()?);
            let events = self.enrollment_events(factor, first_challenge)?;
            match self
                .store
                .insert_factor(factor, first_challenge, &events)
                .await
            {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict(_)) if attempt < METHOD_ID_ATTEMPTS => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Internal("could not allocate a method id".into()))
    }

    /// The events of an enrollment: the factor, and its first challenge if any.
    fn enrollment_events(
        &self,
        factor: &Factor,
        first_challenge: Option<&Challenge>,
    ) -> Result<Vec<EventRecord>, CoreError> {
        let view = FactorView::of(factor);
        let mut events = self.event(
            &factor.tenant_id,
            EventKind::FactorCreated,
            Subject::Factor(view.clone()),
        )?;
        if let Some(c) = first_challenge {
            events.extend(self.event(
                &factor.tenant_id,
                EventKind::ChallengeCreated,
                Subject::Challenge {
                    challenge: ChallengeView::of(c),
                    factor: view,
                },
            )?);
        }
        Ok(events)
    }

    fn build_factor(
        &self,
        tenant: &TenantId,
        user_id: Option<UserId>,
        new: NewFactor,
    ) -> Result<(Factor, Option<TotpSecrets>), CoreError> {
        let now = self.clock.now();
        let id = FactorId::generate(now)?;
        let (details, secrets) = match new {
            NewFactor::Totp {
                issuer,
                user,
                secret,
            } => {
                let mut errors = Vec::new();
                for (field, value) in [(Field::TotpIssuer, &issuer), (Field::TotpUser, &user)] {
                    if value.trim().is_empty() {
                        errors.push(FieldError::new(field, Reason::Required));
                    } else if value.len() > MAX_LABEL_LEN {
                        errors.push(FieldError::new(
                            field,
                            Reason::TooLong { max: MAX_LABEL_LEN },
                        ));
                    }
                }
                let secret = match secret {
                    Some(text) => {
                        let parsed = enrollment::parse_base32_secret(&text);
                        if parsed.is_none() {
                            errors.push(FieldError::new(Field::TotpSecret, Reason::Invalid));
                        }
                        parsed
                    }
                    None => None,
                };
                if !errors.is_empty() {
                    return Err(CoreError::Validation(errors));
                }
                let secret = match secret {
                    Some(s) => s,
                    None => enrollment::generate_secret()?,
                };
                let mut totp = TotpFactor {
                    issuer,
                    user,
                    algorithm: Algorithm::Sha1,
                    digits: 6,
                    period: 30,
                    sealed_secret: Vec::new(),
                    last_used_step: None,
                };
                totp.sealed_secret = self.keyring.seal(&secret, id.as_str().as_bytes())?;
                let b32 = enrollment::base32(&secret);
                let uri = enrollment::key_uri(&totp, &b32);
                let qr_code = enrollment::qr_data_uri(&uri)?;
                (
                    FactorDetails::Totp(totp),
                    Some(TotpSecrets {
                        secret: b32,
                        uri,
                        qr_code,
                    }),
                )
            }
            NewFactor::Sms { phone_number } => (
                FactorDetails::Sms {
                    phone: PhoneNumber::parse(&phone_number)?,
                },
                None,
            ),
            NewFactor::GenericOtp => (FactorDetails::GenericOtp, None),
        };
        Ok((
            Factor {
                id,
                tenant_id: tenant.clone(),
                user_id,
                details,
                method_id: None,
                name: None,
                created_at: now,
                updated_at: now,
                failures: FailureCount::default(),
            },
            secrets,
        ))
    }

    /// A factor of this tenant.
    pub async fn get_factor(&self, tenant: &TenantId, id: &str) -> Result<Factor, CoreError> {
        let fid = FactorId::parse(id).ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        self.store
            .get_factor(tenant, &fid)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Factor, id))
    }

    /// Deletes a factor and its challenges.
    pub async fn delete_factor(&self, tenant: &TenantId, id: &str) -> Result<(), CoreError> {
        let fid = FactorId::parse(id).ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        let factor = self
            .store
            .get_factor(tenant, &fid)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        let events = self.event(
            tenant,
            EventKind::FactorDeleted,
            Subject::Factor(FactorView::of(&factor)),
        )?;
        if self.store.delete_factor(tenant, &fid, &events).await? {
            Ok(())
        } else {
            Err(CoreError::not_found(Entity::Factor, id))
        }
    }

    /// One page of a user's factors.
    pub async fn list_user_factors(
        &self,
        tenant: &TenantId,
        user_id: &UserId,
        req: &ListRequest,
    ) -> Result<Page<Factor>, CoreError> {
        if !(1..=100).contains(&req.limit) {
            return Err(CoreError::invalid(
                Field::Limit,
                Reason::OutOfRange { min: 1, max: 100 },
            ));
        }
        let plan = crate::pagination::plan(
            req.order,
            req.before.as_ref(),
            req.after.as_ref(),
            req.limit,
        );
        let rows = self
            .store
            .scan_user_factors(plan.scan(tenant, user_id))
            .await?;
        Ok(plan.page(rows, |f| &f.id))
    }

    // ---- operator commands (`mfad factor …`) -----------------------------------------

    /// A factor in any tenant, with what the throttle says about its next attempt.
    pub async fn inspect_factor(&self, id: &str) -> Result<(Factor, Gate), CoreError> {
        let fid = FactorId::parse(id).ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        let factor = self
            .store
            .find_factor(&fid)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        let gate = self
            .policy
            .throttle
            .gate(&factor.failures, self.clock.now());
        Ok((factor, gate))
    }

    /// Clears a factor's failures: the next code is judged at once, on every node.
    pub async fn unlock_factor(&self, id: &str) -> Result<(), CoreError> {
        let fid = FactorId::parse(id).ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        let factor = self
            .store
            .find_factor(&fid)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Factor, id))?;
        let events = self.event(
            &factor.tenant_id,
            EventKind::FactorUnlocked,
            Subject::Factor(FactorView::of(&factor)),
        )?;
        if self.store.unlock_factor(&fid, &events).await? {
            tracing::warn!(factor = %fid, "factor unlocked by the operator");
            Ok(())
        } else {
            Err(CoreError::not_found(Entity::Factor, id))
        }
    }

    /// Clears the failures of a user (FusionAuth's per-user count) and of all the user's
    /// factors in a tenant named by id or name. Returns how many counts were cleared.
    pub async fn unlock_user(&self, tenant: &str, user: &str) -> Result<u64, CoreError> {
        let t = self
            .find_tenant(tenant)
            .await?
            .ok_or_else(|| CoreError::not_found(Entity::Tenant, tenant))?;
        let u = UserId::parse(user).ok_or_else(|| CoreError::not_found(Entity::User, user))?;
        let events = self.event(&t.id, EventKind::FactorUnlocked, Subject::User(u.clone()))?;
        let cleared = self.store.unlock_user(&t.id, &u, &events).await?;
        tracing::warn!(tenant = %t.id, user = %u, cleared, "user unlocked by the operator");
        Ok(cleared)
    }
}
