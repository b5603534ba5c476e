#!/usr/bin/env bash
# The order-flow demo over NATS JetStream, from start to finish:
#   1. starts nats-server with JetStream in a temporary directory;
#   2. starts the services as separate processes: order, notification, and two
#      replicas each of inventory and payment (to show load balancing);
#   3. places a batch of orders, some designed to be declined or out of stock
#      (`order-flow --role demo`), shows progress, waits until every order is
#      confirmed or cancelled, and prints the summary;
#   4. stops everything and removes the directory: no process is left behind.
#
#   bash samples/order-flow/run-demo.sh                  # builds (Release) if needed, 60 orders
#   bash samples/order-flow/run-demo.sh --orders 200     # options go to the demo driver
#   ORDER_FLOW_BIN=/path/to/order-flow bash samples/order-flow/run-demo.sh   # no build
#   KEEP_LOGS=1 ...                                      # keep the services' logs
#   CATGA_NATS_SERVER=/path/to/nats-server ...           # another nats-server binary
# Exit code: the demo driver's (0 when every order ended as designed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="${ORDER_FLOW_BIN:-}"
if [[ -z "$bin" ]]; then
  source "$root/scripts/lib/deps.sh"
  catga_install_deps
  build="$root/build/demo"
  # NATS explicitly on: a build/demo configured before it was the default keeps OFF in its cache.
  catga_build "$build" Release -DCATGA_BUILD_TESTS=OFF -DCATGA_BUILD_BENCH=OFF -DCATGA_BUILD_EXAMPLES=ON \
    -DCATGA_WITH_NATS=ON -DORDER_FLOW_NATS=ON -- order_flow >&2
  bin="$build/samples/order-flow/order-flow"
fi
[[ -x "$bin" ]] || { echo "run-demo: no order-flow binary at $bin" >&2; exit 1; }
nats_server="${CATGA_NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
[[ -x "$nats_server" ]] || { echo "run-demo: nats-server not found (apt-get install nats-server)" >&2; exit 1; }

tmp="$(mktemp -d -t order-flow-demo.XXXXXX)"
pids=()
nats_pid=""

# Stops the services (SIGTERM, then SIGKILL after 15 s), then NATS, then
# removes the directory. Runs on every exit, including Ctrl-C.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  local deadline=$((SECONDS + 15))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [[ -n "$nats_pid" ]]; then
    kill -TERM "$nats_pid" 2>/dev/null || true
    wait "$nats_pid" 2>/dev/null || true
  fi
  if [[ "${KEEP_LOGS:-0}" == 1 ]]; then
    echo "Stopped the services and nats-server; logs kept in $tmp"
  else
    rm -rf "$tmp"
    echo "Stopped the services and nats-server; removed $tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The HTTP status of GET <path> on 127.0.0.1:<port>, or 000 (in a subshell,
# so the connection and bash's "connection refused" stay in it).
http_status() {
  local port=$1 path=$2
  (
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
    read -r _ status _ <&3 && echo "$status"
  ) 2>/dev/null || echo 000
}

# Waits until <command...> succeeds; fails at once if process <pid> is gone,
# or after <seconds>, showing the end of $tmp/<name>.log.
wait_for() {  # <name> <pid> <seconds> <command...>
  local name=$1 pid=$2 seconds=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      echo "run-demo: $name did not come up; the end of its log:" >&2
      tail -n 30 "$tmp/$name.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
}

# The port a process reported in its log (<pattern> ends right before it).
# Every process picks a free port itself (port 0 / -1), so nothing races for one.
logged_port() {  # <log> <pattern>
  sed -n "s/.*$2\([0-9][0-9]*\).*/\1/p" "$1" 2>/dev/null | head -n 1
}
has_port() { [[ -n "$(logged_port "$1" "$2")" ]]; }

# --- NATS ---------------------------------------------------------------------
"$nats_server" -js -a 127.0.0.1 -p -1 -sd "$tmp/jetstream" >"$tmp/nats.log" 2>&1 &
nats_pid=$!
nats_pattern='Listening for client connections on 127\.0\.0\.1:'
wait_for nats "$nats_pid" 30 has_port "$tmp/nats.log" "$nats_pattern"
nats_port="$(logged_port "$tmp/nats.log" "$nats_pattern")"
echo "nats-server with JetStream on nats://127.0.0.1:$nats_port (data in $tmp)"

# --- services -------------------------------------------------------------------
instances=()
ports=()
start_service() {  # <role> <instance> [VAR=value...]
  local role=$1 instance=$2
  shift 2
  env LOG_LEVEL=info NATS_URL="nats://127.0.0.1:$nats_port" HTTP_PORT=0 INSTANCE_ID="$instance" SERVICE_NAME="$role" \
    ORDER_FLOW_TRANSPORT=nats "$@" "$bin" >"$tmp/$instance.log" 2>&1 &
  pids+=($!)
  instances+=("$instance")
}
echo "Starting the services:"
start_service inventory inventory-1
start_service inventory inventory-2
start_service payment payment-1 PAYMENT_LATENCY_MS="${PAYMENT_LATENCY_MS:-20}"
start_service payment payment-2 PAYMENT_LATENCY_MS="${PAYMENT_LATENCY_MS:-20}"
start_service notification notification-1
start_service order order-1
http_pattern='http=http:\/\/127\.0\.0\.1:'
ready() { [[ "$(http_status "$1" /readyz)" == 200 ]]; }
for i in "${!instances[@]}"; do
  instance="${instances[$i]}"
  wait_for "$instance" "${pids[$i]}" 60 has_port "$tmp/$instance.log" "$http_pattern"
  port="$(logged_port "$tmp/$instance.log" "$http_pattern")"
  ports+=("$port")
  wait_for "$instance" "${pids[$i]}" 60 ready "$port"
  printf '  %-15s http://127.0.0.1:%s\n' "$instance" "$port"
done
order_port="${ports[-1]}"
echo "All services ready."
echo

# --- the demo -------------------------------------------------------------------
urls=()
for port in "${ports[@]}"; do urls+=("http://127.0.0.1:$port"); done
scrape="$(IFS=,; echo "${urls[*]}")"
set +e
"$bin" --role demo --order-url "http://127.0.0.1:$order_port" --scrape "$scrape" "$@"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  echo "run-demo: the demo failed; last lines of each service's log:" >&2
  for f in "$tmp"/*.log; do
    echo "--- $(basename "$f")" >&2
    tail -n 10 "$f" >&2
  done
fi
exit $rc
