#!/usr/bin/env bash
# The whole test suite, from a fresh clone on Debian 12: installs what the tests need, then
# checks formatting and lints, builds every binary, and runs every test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }

command -v cargo >/dev/null || {
    echo "cargo not found: install a Rust toolchain (1.92 or newer), e.g. with rustup, then run this again" >&2
    exit 1
}

step "Debian packages"
bash tests/deps.sh

step "npm packages for the browser tests (from the lockfile)"
npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error

step "npm packages of the dashboard (hls.js, embedded into desktop-streamer-web at build time)"
npm ci --prefix web-monitor/ui --no-audit --no-fund --loglevel=error

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "build every binary (end-to-end tests run them)"
cargo build --workspace --bins --locked

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    # Doc tests first, so the run closes on nextest's summary of every test.
    cargo test --workspace --doc --locked
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
