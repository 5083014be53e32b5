//! mfad-client's integration tests, one test binary (each extra `tests/*.rs` file is another
//! link): `workos` and `fusionauth` drive the real `mfad` binary, `wire` checks what goes
//! over the wire on a recording server. The harness is `support`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "integration tests and their helpers: a failure is a test failure"
)]

mod support;

mod fusionauth;
mod webauthn;
mod wire;
mod workos;
