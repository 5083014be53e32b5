//! Operating mfad: the API contract (`/openapi.json`), metrics, readiness and graceful
//! shutdown (issue 11).

mod openapi;
