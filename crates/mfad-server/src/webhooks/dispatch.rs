//! The background task that drains the webhook outbox through `mfad_core::webhooks`.
