//! mfad's domain: factors, challenges, OTP policy and the service that runs them.
//!
//! This crate knows nothing of HTTP or SQL. Storage is the [`store::Store`] port, SMS
//! delivery the [`sms::SmsSender`] port, time the [`clock::Clock`] port; the server crate
//! plugs real adapters into them and tests plug in a manual clock.

pub mod clock;
pub mod email;
pub mod enrollment;
pub mod error;
pub mod events;
pub mod idempotency;
pub mod ids;
pub mod jwt_keys;
pub mod key_cache;
pub mod metrics;
pub mod model;
pub mod pagination;
pub mod phone;
pub mod recovery;
pub mod rotation;
pub mod send_limits;
pub mod service;
pub mod sms;
pub mod store;
pub mod verify;
pub mod webauthn;
pub mod webhooks;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{CoreError, StoreError};
pub use ids::{ApiKeyId, ChallengeId, EventId, FactorId, JwtKeyId, MethodId, TenantId, UserId};
pub use model::*;
pub use service::{Policy, Service};
