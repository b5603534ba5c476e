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
# Exit code: the demo driver's (0 when every order ended as designed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="${ORDER_FLOW_BIN:-}"
if [[ -z "$bin" ]]; then
  source "$root/scripts/lib/deps.sh"
  catga_install_deps
  build="$root/build/demo"
  catga_build "$build" Release -DCATGA_BUILD_TESTS=OFF -DCATGA_BUILD_BENCH=OFF -DCATGA_BUILD_EXAMPLES=ON \
    -- order_flow >&2
  bin="$build/samples/order-flow/order-flow"
fi
[[ -x "$bin" ]] || { echo "run-demo: no order-flow binary at $bin" >&2; exit 1; }
nats_server="$(command -v nats-server || echo /usr/sbin/nats-server)"
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
    echo "logs kept in $tmp" >&2
  else
    rm -rf "$tmp"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port nobody listens on (checked, then used: fine on a dev machine).
free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "run-demo: no free port" >&2
  return 1
}

# The HTTP status of GET <path> on 127.0.0.1:<port>, or 000.
http_status() {
  local port=$1 path=$2 line
  if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$path" >&3
    read -r line <&3 || line=""
    exec 3<&- 3>&-
    echo "$line" | awk '{print $2}'
  else
    echo 000
  fi
}

wait_for() {  # <what> <seconds> <command...>
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    if ((SECONDS >= deadline)); then
      echo "run-demo: $what did not come up; its log:" >&2
      tail -n 30 "$tmp/$what.log" >&2 || true
      return 1
    fi
    sleep 0.1
  done
}

# --- NATS ---------------------------------------------------------------------
nats_port="$(free_port)"
"$nats_server" -js -a 127.0.0.1 -p "$nats_port" -sd "$tmp/jetstream" >"$tmp/nats.log" 2>&1 &
nats_pid=$!
nats_up() { (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null; }
wait_for nats 30 nats_up
echo "nats-server with JetStream on nats://127.0.0.1:$nats_port (data in $tmp)"

# --- services -------------------------------------------------------------------
instances=()
ports=()
start_service() {  # <role> <instance> [VAR=value...]
  local role=$1 instance=$2 port
  shift 2
  port="$(free_port)"
  env NATS_URL="nats://127.0.0.1:$nats_port" HTTP_PORT="$port" INSTANCE_ID="$instance" SERVICE_NAME="$role" \
    ORDER_FLOW_TRANSPORT=nats "$@" "$bin" >"$tmp/$instance.log" 2>&1 &
  pids+=($!)
  instances+=("$instance")
  ports+=("$port")
  printf '  %-15s http://127.0.0.1:%s\n' "$instance" "$port"
}
echo "Starting the services:"
start_service inventory inventory-1
start_service inventory inventory-2
start_service payment payment-1 PAYMENT_LATENCY_MS="${PAYMENT_LATENCY_MS:-20}"
start_service payment payment-2 PAYMENT_LATENCY_MS="${PAYMENT_LATENCY_MS:-20}"
start_service notification notification-1
start_service order order-1
order_port="${ports[-1]}"
ready() { [[ "$(http_status "$1" /readyz)" == 200 ]]; }
for i in "${!instances[@]}"; do
  wait_for "${instances[$i]}" 60 ready "${ports[$i]}"
done
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
