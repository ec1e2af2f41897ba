# Tierlab tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Everything CI checks: formatting, lints, unit and integration tests (real Redis).
test:
    @command -v redis-server >/dev/null || { echo "redis-server is not on PATH: apt-get install -y redis-server"; exit 1; }
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo test --workspace --locked

# Start a local tier-2 topology (Redis + 3 replicas + HAProxy) until Ctrl-C.
bench-tier2:
    cargo build --release --locked -p tierlab-server
    scripts/tier2-up.sh

# One replica by hand (memory state unless REDIS_URL is set).
serve *ARGS:
    cargo run --release --locked -p tierlab-server -- {{ARGS}}
