//! The FusionAuth Two Factor API over real HTTP: the real application in-process on a
//! random port with a manual clock (expiries and TOTP steps are crossed without sleeping),
//! a Twilio stand-in and an SMTP sink on loopback. One test binary, modules by topic; the
//! `postgres` module runs the main flows on PostgreSQL when `MFAD_TEST_DATABASE_URL` is set.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed unwrap is a failed test"
)]

mod helpers;

mod auth;
mod current;
mod errors;
mod legacy;
mod postgres;
mod shared;
