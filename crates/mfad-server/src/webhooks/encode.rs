//! WorkOS and FusionAuth webhook bodies and signatures.
