# Tierlab tasks. `just --list` shows them all.

set shell := ["bash", "-euo", "pipefail", "-c"]
# Arguments reach recipes as "$@", quoting intact: --set 'load.stages=[{to=30,over="5s"}]' stays one argument.
set positional-arguments

tierlab := "target/release/tierlab"

# Everything CI checks: formatting, lints, unit and integration tests (real Redis, HAProxy; containers where a Docker engine answers, after building the images).
test:
    @command -v redis-server >/dev/null || { echo "redis-server is not on PATH: apt-get install -y redis-server"; exit 1; }
    @command -v haproxy >/dev/null || { echo "haproxy is not on PATH: apt-get install -y haproxy"; exit 1; }
    @command -v redis-sentinel >/dev/null || { echo "redis-sentinel is not on PATH: apt-get install -y redis-sentinel"; exit 1; }
    @command -v chromium >/dev/null || { echo "chromium is not on PATH (the report test renders in it): apt-get install -y chromium"; exit 1; }
    @python3 -c "import socketio, aiohttp, redis" 2>/dev/null || { echo "the python-socketio peer needs: python3 -m pip install -r scenarios/peers/requirements.txt"; exit 1; }
    @if docker info >/dev/null 2>&1; then just images; else echo "test: no Docker engine answers; the container tests will say they are skipped"; fi
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets --locked -- -D warnings
    cargo build --workspace --bins --locked
    bash docker/k8s/validate.sh
    cargo test --workspace --locked

# Build the release binaries the benchmarks use.
build:
    cargo build --release --locked -p tierlab-server -p tierlab-loadgen

# The main job: how many players tier 2 (3 replicas + Redis + HAProxy) holds on this machine, and what stops it: steps of 2,000, then a bisection to 250 (~3 min after the build) → the verdict and capacity.html.
bench-tier2 *ARGS: build
    {{tierlab}} capacity scenarios/tier2.toml "$@"

# Tier 2 under the fixed load of scenarios/tier2.toml: ramp, hold, ramp down (~4 min) → run.json and report.html.
bench-tier2-fixed *ARGS: build
    {{tierlab}} run scenarios/tier2.toml "$@"

# The single-server baseline: one replica, memory state.
bench-tier1 *ARGS: build
    {{tierlab}} run scenarios/tier1.toml "$@"

# Server fan-out: rooms of 10 across 3 replicas + Redis, then the memory-mode baseline.
bench-server *ARGS: build
    {{tierlab}} run scenarios/bench-server.toml "$@"
    {{tierlab}} run scenarios/bench-server.toml --set topology.state=memory --set topology.replicas=1 "$@"

# Where a replica's CPU goes: bench-server's workload at PLAYERS (rooms of 10, 1 act/s, direct to 3 replicas + Redis), perf record -g on srv-1 for SECONDS of the hold → two blocks in docs/performance.md. Needs perf (apt-get install -y linux-perf).
profile-server PLAYERS="8000" SECONDS="15": build
    bash scripts/profile-server.sh {{PLAYERS}} {{SECONDS}}

# What idempotency keys cost the server: bench-server with keyed acts (the default) and without, interleaved A B A B, then the figures block in docs/performance.md.
bench-keys: build
    rm -rf runs/keys
    for round in 1 2; do {{tierlab}} run scenarios/bench-server.toml --quiet --no-report --out runs/keys/keyed-$round; {{tierlab}} run scenarios/bench-server.toml --quiet --no-report --set behaviour.idempotency_keys=false --out runs/keys/no-keys-$round; done
    {{tierlab}} figures --section key-cost --into docs/performance.md --command "just bench-keys" runs/keys/keyed-1 runs/keys/no-keys-1 runs/keys/keyed-2 runs/keys/no-keys-2

# Generator cost: memory per idle connected player (19,000), then CPU per event and send lag under load (5,000 acting players).
bench-generator *ARGS: build
    {{tierlab}} run scenarios/idle.toml --out runs/bench-generator/idle "$@"
    {{tierlab}} run scenarios/generator.toml --out runs/bench-generator/active "$@"

# 50,000 idle players over as many generator processes as they need.
bench-generator-50k *ARGS: build
    {{tierlab}} run scenarios/idle-50k.toml --out runs/bench-generator/idle-50k "$@"

# The instrument's self-test: known delays on the players' links must move the measured latencies by themselves (null target, then tierlab-server).
calibrate *ARGS: build
    {{tierlab}} calibrate --out runs/calibrate/null "$@"
    {{tierlab}} calibrate --target server --out runs/calibrate/server "$@"

# Run any scenario: just run scenarios/smoke.toml --set population.rooms=20
run SCENARIO *ARGS: build
    {{tierlab}} run {{SCENARIO}} "${@:2}"

# Build the container images offline (debootstrap base, cached by recipe hash; server, redis, haproxy, loadgen).
images: build
    bash docker/images.sh

# The tier-2 stack in containers (Redis, 3 replicas, HAProxy on 127.0.0.1:8000).
up-tier2: images
    docker-compose -f docker/compose.tier2.yml -p tierlab down --remove-orphans >/dev/null 2>&1 || true
    docker-compose -f docker/compose.tier2.yml -p tierlab up -d
    @bash docker/wait-healthy.sh tierlab
    @echo "tier 2 is up: ws://127.0.0.1:8000/ws, http://127.0.0.1:8000/api/rooms"

# Stop and remove the compose stack.
down-tier2:
    docker-compose -f docker/compose.tier2.yml -p tierlab down --remove-orphans

# tier 2 as containers started by tierlab (testcontainers), under the tier-2 load.
bench-tier2-docker *ARGS: images
    {{tierlab}} run scenarios/tier2-docker.toml "$@"

# One replica by hand (add --state memory to run without Redis).
serve *ARGS:
    cargo run --release --locked -p tierlab-server -- "$@"

# A fault drill: scenarios/drills/NAME.toml (failover-replica, redis-outage, redis-stall, redis-failover, partition, reconnect-storm).
drill NAME *ARGS: build
    {{tierlab}} run scenarios/drills/{{NAME}}.toml "${@:2}"
    @if [ "{{NAME}}" = reconnect-storm ]; then {{tierlab}} run scenarios/drills/reconnect-storm.toml --set behaviour.backoff=exponential "${@:2}"; fi

# The A/B gate CI runs after the tests: this checkout's tierlab-server (B, as it is on disk) against its previous commit's (A, from a throwaway worktree), both built alike into target/ab-builds, on scenarios/gate.toml interleaved A B B A A B on this machine. 0 pass, 98 a regression, 99 a run failed its SLOs, 2 could not compare. A regression must show in a second gate too, and a gate that could not compare gets a second, so one unlucky gate does not fail CI.
gate *ARGS: build
    #!/usr/bin/env bash
    set -euo pipefail
    if ! git rev-parse --verify -q HEAD~1 >/dev/null; then echo "gate: no previous commit to gate against: skipped"; exit 0; fi
    once() { rm -rf "runs/gate-$1"; {{tierlab}} ab scenarios/gate.toml --baseline rev:HEAD~1 --candidate tree:. --out "runs/gate-$1" "${@:2}"; }
    # 98 (a regression) must show in a second gate too; 2 (too few runs fit to compare, as CPU steal on a shared VM can leave) gets a second gate of its own that counts seconds with up to 25 % steal (its intervals widen with the noise; it says so).
    once 1 "$@" || { rc=$?; case "$rc" in 98) echo "gate: a regression in one gate; confirming with a second"; once 2 "$@";; 2) echo "gate: could not compare; one more gate, counting seconds with up to 25 % CPU steal"; once 2 --max-steal 25% "$@";; *) exit "$rc";; esac; }

# The gate against a stored baseline, where only one build is at hand: the smoke scenario against reports/baselines/smoke.json (absolute checks; see docs/scenarios.md for when to use which).
gate-stored *ARGS:
    cargo build --workspace --bins --locked
    rm -rf runs/gate-smoke
    target/debug/tierlab run scenarios/smoke.toml --quiet --out runs/gate-smoke
    target/debug/tierlab gate runs/gate-smoke --baseline reports/baselines/smoke.json "$@"

# Measure and write every figure block of docs/performance.md and docs/capacity.md again (each names the command that measured it): calibration, the generator, the reference server, tier 2's capacity, the tiers' sweep, the A/B gate's proof. Long (~50 min): a section alone is its command and `tierlab figures` (see the recipe).
docs-figures: build
    just calibrate
    {{tierlab}} figures --section calibration --into docs/performance.md --command "just calibrate" runs/calibrate/null runs/calibrate/server
    rm -rf runs/docs
    just bench-generator
    just bench-generator-50k
    {{tierlab}} run scenarios/tier2.toml --quiet --no-report --out runs/docs/tier2
    {{tierlab}} figures --section generator --into docs/performance.md --command "just bench-generator; just bench-generator-50k; just bench-tier2-fixed" runs/bench-generator/idle runs/bench-generator/active runs/bench-generator/idle-50k runs/docs/tier2
    {{tierlab}} run scenarios/bench-server.toml --quiet --no-report --out runs/docs/bench-server-redis
    {{tierlab}} run scenarios/bench-server.toml --quiet --no-report --set topology.state=memory --set topology.replicas=1 --out runs/docs/bench-server-memory
    {{tierlab}} figures --section bench-server --into docs/performance.md --command "just bench-server" runs/docs/bench-server-redis runs/docs/bench-server-memory
    {{tierlab}} run scenarios/drills/redis-stall.toml --quiet --no-report --out runs/docs/redis-stall-keyed
    {{tierlab}} run scenarios/drills/redis-stall.toml --quiet --no-report --set behaviour.idempotency_keys=false --out runs/docs/redis-stall-unkeyed
    {{tierlab}} figures --section drills --into docs/performance.md --command "just drill redis-stall; just drill redis-stall --set behaviour.idempotency_keys=false" runs/docs/redis-stall-keyed runs/docs/redis-stall-unkeyed
    {{tierlab}} capacity scenarios/tier2.toml --quiet --out runs/docs/tier2-capacity
    {{tierlab}} figures --section tier2-capacity --into docs/capacity.md --command "just bench-tier2" runs/docs/tier2-capacity/capacity.json
    {{tierlab}} capacity scenarios/capacity.toml --replicas 1,2,3 --state memory,redis --quiet --out runs/docs/tiers
    {{tierlab}} figures --section tiers --into docs/capacity.md --command "just capacity" runs/docs/tiers/capacity.json
    just plan-100k runs/docs/tiers
    just gate-proof

# The A/B gate's proof for docs/performance.md: TRIALS A/A gates (one build twice) and TRIALS A/B gates against a build burning SPEND of CPU per delivered event, then the figures.
gate-proof TRIALS="10" SPEND="20us": build
    bash scripts/gate-proof.sh {{TRIALS}} {{SPEND}}

# Record the smoke baseline from 8 runs (tolerances from their spread).
baseline-smoke:
    cargo build --workspace --bins --locked
    for i in 1 2 3 4 5 6 7 8; do rm -rf runs/baseline-smoke-$i; target/debug/tierlab run scenarios/smoke.toml --quiet --out runs/baseline-smoke-$i; done
    target/debug/tierlab baseline runs/baseline-smoke-*

# Write report.html, report.md and junit.xml for a run directory.
report RUN *ARGS:
    cargo run --release --locked -q -p tierlab-loadgen -- report {{RUN}} "${@:2}"

# Capacity sweep of tier 1 (memory, 1 replica) and tier 2 (redis, 1–3 replicas): capacity.json + capacity.html.
capacity *ARGS: build
    {{tierlab}} capacity scenarios/capacity.toml --replicas 1,2,3 --state memory,redis "$@"

# The reference server against python-socketio on one workload: a sweep and a drill each; compare.json + compare.html.
compare *ARGS: build
    @python3 -c "import socketio, aiohttp, redis" 2>/dev/null || { echo "the python-socketio peer needs: python3 -m pip install -r scenarios/peers/requirements.txt"; exit 1; }
    {{tierlab}} compare scenarios/compare-socketio.toml "$@"

# The 100,000-player plan of docs/capacity.md: a sweep's per-player costs (DIR/capacity.json from `just capacity --out DIR`) on the machines of reports/cost.aws.toml, written into docs/capacity.md.
plan-100k DIR="runs/docs/tiers": build
    {{tierlab}} plan --capacity {{DIR}}/capacity.json --players 100000 --cost reports/cost.aws.toml --into docs/capacity.md --section plan-100k --command "just capacity --out {{DIR}}; just plan-100k {{DIR}}"

# One Redis against a 3-shard Redis Cluster under the same 3 replicas (two sweeps, two capacity reports).
capacity-cluster *ARGS: build
    {{tierlab}} capacity scenarios/capacity.toml --replicas 3 --state redis "$@"
    {{tierlab}} capacity scenarios/capacity.toml --replicas 3 --state redis --set topology.redis_shards=3 "$@"
