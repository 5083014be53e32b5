//! Which URLs and addresses a webhook may be delivered to (no server-side request forgery).
