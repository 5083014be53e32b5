//! Webhooks on the wire: the two vendors' delivery formats and signatures (`encode`), the
//! HTTP client that posts them under the address policy (`transport`), the background
//! task that drains the outbox (`dispatch`) and the operator's commands (`cli`). The domain's rules are `mfad_core::webhooks`.

pub mod cli;
pub mod dispatch;
pub mod encode;
pub mod transport;

pub use encode::{VendorEncoder, fusionauth_event_type};
pub use transport::HttpTransport;
