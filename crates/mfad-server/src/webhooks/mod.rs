//! Webhooks on the wire: the two vendors' delivery formats and signatures (`encode`), the
//! HTTP client that posts them under the address policy (`transport`), and the background
//! task that drains the outbox (`dispatch`). The domain's rules are `mfad_core::webhooks`.

pub mod dispatch;
pub mod encode;
pub mod transport;

pub use encode::{VendorEncoder, fusionauth_event_type};
pub use transport::HttpTransport;
