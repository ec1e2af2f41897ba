#!/usr/bin/env bash
# The A/B gate's proof (docs/performance.md, "The A/B gate"): TRIALS A/A
# gates (the same release tierlab-server twice, as two files) and TRIALS
# A/B gates against a build that burns SPEND of CPU per delivered event
# (the hidden --spend-per-delivery flag), alternating A/A and A/B, each a
# `tierlab ab scenarios/gate.toml` of 3 rounds; then the figures block.
# A trial that already has its ab.json is kept, so an interrupted proof
# resumes where it stopped, and a second SPEND adds its own A/B trials
# (NN-ab-SPEND) beside the first's; the block tallies every pair of builds.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
spend=${2:-20us}
out=runs/gate-proof
bin="$PWD/$out/bin"
mkdir -p "$bin"
# Fixed copies: a rebuild during the proof does not change what it measures.
[ -x "$bin/tierlab" ] || cp target/release/tierlab "$bin/tierlab"
[ -x "$bin/server" ] || cp target/release/tierlab-server "$bin/server"
[ -x "$bin/server-again" ] || cp "$bin/server" "$bin/server-again"
printf '#!/bin/sh\nexec "%s" --spend-per-delivery %s "$@"\n' "$bin/server" "$spend" > "$bin/server-spend-$spend"
chmod +x "$bin/server-spend-$spend"
trial() {
  local dir=$1 candidate=$2
  [ -f "$dir/ab.json" ] && return 0
  rm -rf "$dir"
  "$bin/tierlab" ab scenarios/gate.toml --baseline "bin:$bin/server" --candidate "bin:$candidate" \
    --rounds 3 --out "$dir" > "$dir.log" 2>&1 || true
  echo "$(basename "$dir"): $(tail -1 "$dir.log")"
}
for i in $(seq -f "%02g" 1 "$trials"); do
  trial "$out/$i-aa" "$bin/server-again"
  trial "$out/$i-ab-$spend" "$bin/server-spend-$spend"
done
"$bin/tierlab" figures --section gate-proof --into docs/performance.md \
  --command "just gate-proof $trials $spend" "$out"/*-aa/ "$out"/*-ab-*/ > /dev/null
echo "gate-proof: docs/performance.md updated from $out"
