#!/usr/bin/env bash
# Runs a program with NATS_URL pointing at a nats-server (JetStream, a free
# loopback port, a temporary store) started here and stopped afterwards.
#   with_nats_server.sh <nats-server> <program> [args...]
set -euo pipefail
server="$1"
shift
dir="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$server" -js -a 127.0.0.1 -p "$port" -sd "$dir/js" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
  sleep 0.1
done
NATS_URL="nats://127.0.0.1:$port" "$@"
