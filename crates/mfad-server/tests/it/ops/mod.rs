//! Operating mfad: the API contract (`/openapi.json`), metrics, readiness and graceful
//! shutdown (issue 11).

mod metrics;
mod openapi;
mod ready;
mod shutdown;
