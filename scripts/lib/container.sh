# shellcheck shell=bash
# podman on this kind of machine (Debian 12, no image registry reachable),
# shared by scripts/container and tests/container. Source it, then:
#   catga_podman_usable             # 0 when podman is installed and answers; else CATGA_PODMAN_WHY says why
#   catga_podman <args...>          # podman with the global flags this machine needs
#   catga_container_base_image [1]  # debian:bookworm-slim from debootstrap, unless present (1: rebuild)
#   catga_container_build_image     # the Dockerfile as $CATGA_IMAGE; prints its size
#   CATGA_PODMAN_RUN_FLAGS          # the flags every `podman run`/`build` needs here
#
# What this machine needs, found by trying (issue 25):
#   - runc, not crun: crun refuses the host's hybrid cgroups;
#   - --ulimit nofile/nproc at 1024: asking for the host's own limits is refused;
#   - --network host for builds (apt-get inside the build stage).

catga_container_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CATGA_BASE_IMAGE="${CATGA_BASE_IMAGE:-docker.io/library/debian:bookworm-slim}"
if [[ -z "${CATGA_IMAGE:-}" ]]; then
  CATGA_IMAGE="order-flow:$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$catga_container_root/helm/order-flow/Chart.yaml")"
fi
CATGA_PODMAN_RUN_FLAGS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

catga_container_log() { echo "container: $*" >&2; }

catga_podman() {
  local global=()
  local runc
  runc="$(command -v runc || true)"
  [[ -z "$runc" && -x /usr/sbin/runc ]] && runc=/usr/sbin/runc
  [[ -n "$runc" ]] && global+=(--runtime "$runc")
  # shellcheck disable=SC2206 # word splitting wanted: extra global flags
  [[ -n "${CATGA_PODMAN_ARGS:-}" ]] && global+=($CATGA_PODMAN_ARGS)
  podman "${global[@]}" "$@"
}

# shellcheck disable=SC2034 # CATGA_PODMAN_WHY is read by the callers
catga_podman_usable() {
  CATGA_PODMAN_WHY=""
  if ! command -v podman >/dev/null; then
    CATGA_PODMAN_WHY="podman is not installed (apt-get install podman buildah runc debootstrap)"
    return 1
  fi
  local err
  if ! err="$(catga_podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1)"; then
    CATGA_PODMAN_WHY="podman info failed: ${err//$'\n'/ }"
    return 1
  fi
  return 0
}

# The first deb.debian.org-style URI of the machine's apt sources that serves
# the main archive (not -security).
catga_container_mirror() {
  local uri
  uri="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -v '^[[:space:]]*#' | grep -oE 'https?://[^ ]+' | grep -v -- '-security' | grep '/debian/\{0,1\}$' | head -n1)"
  echo "${uri:-http://deb.debian.org/debian}"
}

catga_container_base_image() {
  local rebuild="${1:-0}"
  if [[ "$rebuild" != 1 ]] && catga_podman image exists "$CATGA_BASE_IMAGE"; then
    return 0
  fi
  if ! command -v debootstrap >/dev/null; then
    catga_container_log "need debootstrap to make $CATGA_BASE_IMAGE (apt-get install debootstrap)"
    return 1
  fi
  if [[ $(id -u) -ne 0 ]]; then
    catga_container_log "debootstrap needs root to make $CATGA_BASE_IMAGE"
    return 1
  fi
  local mirror dir
  mirror="$(catga_container_mirror)"
  dir="$(mktemp -d -t catga-bookworm.XXXXXX)"
  catga_container_log "making $CATGA_BASE_IMAGE: debootstrap --variant=minbase bookworm from $mirror (a few minutes, once)"
  if ! debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1; then
    catga_container_log "debootstrap failed (log: $dir.log)"
    tail -n 20 "$dir.log" >&2
    rm -rf "$dir"
    return 1
  fi
  # As the official image: the release, its updates and security, and no
  # package lists or downloaded packages left in the layer.
  local base="${mirror%/}"
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
    "$base" "$base" "$base" >"$dir/etc/apt/sources.list"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/archives/*.deb "$dir"/var/cache/apt/*.bin
  if ! tar -C "$dir" -c . | catga_podman import --change 'CMD ["bash"]' - "$CATGA_BASE_IMAGE" >/dev/null; then
    catga_container_log "podman import failed"
    rm -rf "$dir"
    return 1
  fi
  rm -rf "$dir" "$dir.log"
  catga_container_log "made $CATGA_BASE_IMAGE"
}

# Builds the Dockerfile as $CATGA_IMAGE. One build at a time (CTest and a
# person at the shell share the layer cache).
catga_container_build_image() {
  local lock="${XDG_RUNTIME_DIR:-/tmp}/catga-container-build.lock"
  local fd
  exec {fd}>"$lock"
  flock "$fd"
  local start=$SECONDS rc=0
  catga_container_log "building $CATGA_IMAGE from $catga_container_root/Dockerfile"
  catga_podman build "${CATGA_PODMAN_RUN_FLAGS[@]}" --network host --layers \
    -t "$CATGA_IMAGE" -f "$catga_container_root/Dockerfile" "$catga_container_root" || rc=$?
  flock -u "$fd"
  exec {fd}>&-
  if ((rc != 0)); then
    catga_container_log "podman build failed ($rc)"
    return "$rc"
  fi
  local size
  size="$(catga_podman image inspect --format '{{.Size}}' "$CATGA_IMAGE")"
  catga_container_log "built $CATGA_IMAGE in $((SECONDS - start)) s: $((size / 1000000)) MB"
}
