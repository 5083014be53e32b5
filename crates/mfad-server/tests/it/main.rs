//! mfad-server's integration tests: one test binary, so the workspace links it once (each
//! extra `tests/*.rs` file is another link of the whole dependency graph). The real server
//! runs in-process on a random port on a manual clock (expiries and TOTP steps are crossed
//! without sleeping), or as the real `mfad` binary; stand-ins for Twilio and SMTP listen on
//! loopback. Modules by entrance: `workos`, `fusionauth`, `multinode` (several processes on
//! one PostgreSQL database), `webhooks` (the outbox through the real binary, a loopback
//! receiver) and `compat` (the official SDKs, run one at a time by nextest).
//! The harness is `support`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

mod compat;
mod fusionauth;
mod keys;
mod multinode;
mod ops;
mod webhooks;
mod workos;
