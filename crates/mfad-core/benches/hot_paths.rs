//! Micro-benchmarks of the CPU work on mfad's hot paths: what verification and enrollment
//! cost before any I/O. Run with `cargo bench -p mfad-core`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark set-up")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mfad_core::enrollment;
use mfad_core::model::TotpFactor;
use mfad_crypto::Keyring;
use mfad_otp::{Algorithm, Totp};

fn totp_factor() -> TotpFactor {
    TotpFactor {
        issuer: "Bench Corp".into(),
        user: "alice@example.com".into(),
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        sealed_secret: Vec::new(),
        last_used_step: None,
    }
}

fn bench(c: &mut Criterion) {
    let keyring = Keyring::from_master_keys(&[[7u8; 32]]).unwrap();
    let secret = [42u8; 20];
    let sealed = keyring
        .seal(&secret, b"auth_factor_01H96FETXENNY99ARX0GRC804C")
        .unwrap();
    let totp = Totp::default();
    let now = 1_768_478_410u64;
    let code = totp.code_at(&secret, now);

    c.bench_function("totp_verify_window_3", |b| {
        b.iter(|| totp.verify(black_box(&secret), black_box(&code), now, None))
    });
    c.bench_function("aead_open_totp_secret", |b| {
        b.iter(|| {
            keyring
                .open(
                    black_box(&sealed),
                    b"auth_factor_01H96FETXENNY99ARX0GRC804C",
                )
                .unwrap()
        })
    });
    c.bench_function("aead_seal_totp_secret", |b| {
        b.iter(|| {
            keyring
                .seal(
                    black_box(&secret),
                    b"auth_factor_01H96FETXENNY99ARX0GRC804C",
                )
                .unwrap()
        })
    });
    let digest = keyring
        .code_digest(b"auth_challenge_01H96FETXGTW1QMBSBT2T36PW0", b"123456")
        .unwrap();
    c.bench_function("code_digest_compare", |b| {
        b.iter(|| {
            keyring.code_matches(
                black_box(&digest),
                b"auth_challenge_01H96FETXGTW1QMBSBT2T36PW0",
                b"123456",
            )
        })
    });
    let factor = totp_factor();
    let b32 = enrollment::base32(&secret);
    let uri = enrollment::key_uri(&factor, &b32);
    c.bench_function("qr_png_data_uri", |b| {
        b.iter(|| enrollment::qr_data_uri(black_box(&uri)).unwrap())
    });
    c.bench_function("enroll_cpu_total", |b| {
        b.iter(|| {
            let s = enrollment::generate_secret().unwrap();
            let sealed = keyring
                .seal(&s, b"auth_factor_01H96FETXENNY99ARX0GRC804C")
                .unwrap();
            let b32 = enrollment::base32(&s);
            let uri = enrollment::key_uri(&factor, &b32);
            (sealed, enrollment::qr_data_uri(&uri).unwrap())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
