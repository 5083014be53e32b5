//! The FusionAuth Two Factor API over real HTTP, with requests exactly as FusionAuth clients
//! send them. Modules by topic; `postgres` runs the main flows on PostgreSQL when
//! `MFAD_TEST_DATABASE_URL` is set.

mod auth;
mod current;
mod errors;
mod legacy;
mod postgres;
mod send_limits;
mod shared;
