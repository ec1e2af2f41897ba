#!/usr/bin/env bash
# Starts Redis, three tierlab-server replicas and HAProxy on loopback, prints
# how to reach them, and stops all of them on Ctrl-C or exit.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --dir "$dir" --daemonize no --logfile "$dir/redis.log" &
pids+=($!)
backends=""
for i in 1 2 3; do
  p=$(port)
  RUST_LOG=warn target/release/tierlab-server --port "$p" --redis-url "redis://127.0.0.1:$redis_port" --server-id "srv-$i" &
  pids+=($!)
  backends+="    server srv-$i 127.0.0.1:$p check"$'\n'
done
lb_port=$(port)
cat > "$dir/haproxy.cfg" <<CFG
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend players
    bind 127.0.0.1:$lb_port
    default_backend replicas
backend replicas
    balance source
    option httpchk GET /ready
$backends
CFG
haproxy -f "$dir/haproxy.cfg" &
pids+=($!)
sleep 1
echo "tier 2 is up: Redis 127.0.0.1:$redis_port, 3 replicas, HAProxy on 127.0.0.1:$lb_port"
echo "  players:  ws://127.0.0.1:$lb_port/ws"
echo "  rooms:    curl -XPOST -d '{\"game\":\"quiz\",\"max_players\":10}' -H 'content-type: application/json' http://127.0.0.1:$lb_port/api/rooms"
echo "  replicas: curl http://127.0.0.1:$lb_port/api/servers"
echo "Ctrl-C stops everything."
wait
