#!/usr/bin/env bash
# Where a replica's CPU goes (docs/performance.md, "Where a replica's time
# goes"): bench-server's workload at PLAYERS players (rooms of 10, 1 act/s,
# members straight to 3 replicas + Redis), `perf record -g` on srv-1 for
# SECONDS of the hold, then two blocks written from the records: the run's
# cost (`tierlab figures`) and the profile (self time by binary, the
# kernel paths and the server's own symbols, from `perf report`).
# Needs perf (Debian: linux-perf) and root or kernel.perf_event_paranoid <= 1.
set -euo pipefail
cd "$(dirname "$0")/.."
players=${1:-8000}
seconds=${2:-15}
out=runs/profile-server
command -v perf >/dev/null || { echo "profile-server: perf is not on PATH: apt-get install -y linux-perf"; exit 2; }
rm -rf "$out"
mkdir -p "$out"
rooms=$((players / 10))
target/release/tierlab run scenarios/bench-server.toml --quiet --no-report --out "$out/run" \
  --set "population.rooms=$rooms" \
  --set "load.stages=[{to=$players,over=\"20s\"},{to=$players,over=\"$((seconds + 25))s\"}]" \
  > "$out/run.log" 2>&1 &
run=$!
trap 'kill "$run" 2>/dev/null || true' EXIT
# The replica appears once the topology is up; the profile starts past the ramp.
pid=""
for _ in $(seq 1 120); do
  pid=$(pgrep -f -- '--server-id srv-1( |$)' | head -1 || true)
  [ -n "$pid" ] && break
  sleep 0.5
done
[ -n "$pid" ] || { echo "profile-server: srv-1 never started; see $out/run.log"; exit 1; }
sleep 25
perf record -e cpu-clock -g -p "$pid" -o "$out/perf.data" -- sleep "$seconds" 2> "$out/perf.log"
wait "$run" || true
trap - EXIT
perf report -i "$out/perf.data" --no-children --sort dso --stdio -q 2>/dev/null > "$out/by-dso.txt"
perf report -i "$out/perf.data" --children --sort sym --stdio -q -g none 2>/dev/null > "$out/children.txt"
perf report -i "$out/perf.data" --no-children --sort dso,sym --stdio -q -g none --percent-limit 0.7 2>/dev/null > "$out/self.txt"
target/release/tierlab figures --section server-profile-run --into docs/performance.md \
  --command "just profile-server $players $seconds" "$out/run"
python3 scripts/profile_block.py "$out" "just profile-server $players $seconds" "$players" "$seconds" \
  > "$out/block.md"
target/release/tierlab figures --section server-profile --into docs/performance.md \
  --command "just profile-server $players $seconds" --block "$out/block.md"
cat "$out/block.md"
