//! The API integration suite: one test binary (so the workspace links it once), the real
//! server on a random port, real SQLite, real HTTP. Time is a `ManualClock`, so expiry and
//! TOTP steps are crossed without sleeping. Modules group tests by behaviour.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod helpers;

mod auth;
mod binary;
mod challenges;
mod concurrency;
mod edge;
mod every_route;
mod factors;
mod input;
mod jwt_keys;
mod users;
