#!/usr/bin/env bash
# Installs what the test suites need beyond the Rust toolchain. Idempotent: each step is
# skipped when its dependency is already present. Called by .ci/run.
#
# - aiosmtpd (PyPI): the real SMTP server that crates/mfad-providers/tests/smtp.rs starts on
#   loopback (through tests/smtp_sink.py) to receive email codes.
# - schemathesis (PyPI): fuzzes the running binary from its OpenAPI document
#   (scripts/schemathesis.sh, issue 11 §1).
set -euo pipefail

AIOSMTPD_VERSION=1.4.6

if python3 -c 'import aiosmtpd, sys; sys.exit(aiosmtpd.__version__ != sys.argv[1])' "$AIOSMTPD_VERSION" 2>/dev/null; then
    echo "aiosmtpd $AIOSMTPD_VERSION already installed"
else
    echo "installing aiosmtpd $AIOSMTPD_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "aiosmtpd==$AIOSMTPD_VERSION"
    python3 -c 'import aiosmtpd; print("aiosmtpd", aiosmtpd.__version__)'
fi

# == schemathesis (ops, issue 11 §1)
SCHEMATHESIS_VERSION=4.32.5
if schemathesis --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
    echo "schemathesis $SCHEMATHESIS_VERSION already installed"
else
    echo "installing schemathesis $SCHEMATHESIS_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "schemathesis==$SCHEMATHESIS_VERSION"
    schemathesis --version
fi

# ---- passkeys (issue 13): the browser test in tests/compat/fusionauth/webauthn_browser.test.mjs
# drives Debian's Chromium headless (playwright-core comes from that suite's package.json, and
# downloads no browser of its own). webauthn-rs 0.6 needs no OpenSSL (RustCrypto), so no
# libssl-dev is needed.
if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || true)"
else
    echo "installing chromium (apt)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
    chromium --version || true
fi
