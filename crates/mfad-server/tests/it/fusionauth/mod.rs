//! The FusionAuth Two Factor API over real HTTP, with requests exactly as FusionAuth clients
//! send them. Modules by topic.

mod auth;
mod current;
mod errors;
mod events;
mod fidelity;
mod legacy;
mod send_limits;
mod shared;
mod webauthn;
