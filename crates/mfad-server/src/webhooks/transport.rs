//! The HTTP client deliveries are posted with, under the address policy.
