//! The outbox delivery loop: per-endpoint leases, order, retries with backoff, the attempt cap.
