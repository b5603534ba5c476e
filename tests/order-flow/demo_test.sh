#!/usr/bin/env bash
# The README's main command as a test: runs samples/order-flow/run-demo.sh
# (nats-server + six service processes + the demo driver) with a built
# binary and a small batch, checks the summary, and checks that the demo
# left no process and no directory behind.
#   bash demo_test.sh <repo-root> <order-flow binary>
set -euo pipefail
root=$1
bin=$2
work="$(mktemp -d -t order-flow-demo-test.XXXXXX)"
out="$(mktemp -t order-flow-demo-out.XXXXXX)"
trap 'rm -rf "$work" "$out"' EXIT

fail() {
  echo "demo_test: $*" >&2
  exit 1
}

# TMPDIR only for the demo: its temp directory goes under $work, and every
# process it starts inherits TMPDIR=$work, which is how leftovers are found.
set +e
TMPDIR="$work" ORDER_FLOW_BIN="$bin" bash "$root/samples/order-flow/run-demo.sh" --orders 30 >"$out" 2>&1
rc=$?
set -e
cat "$out"
[[ $rc -eq 0 ]] || fail "the demo exited with $rc"

for want in "All services ready." "confirmed" "cancelled" "payment_declined" "out_of_stock" \
  "Completion time" "p50" "p99" "inventory-1" "inventory-2" "payment-1" "payment-2" "notification-1" \
  "order-1" "Who cancelled" "Every order ended as designed."; do
  grep -qF -- "$want" "$out" || fail "the output has no '$want'"
done

left=()
for environ in /proc/[0-9]*/environ; do
  pid="${environ#/proc/}"
  pid="${pid%/environ}"
  if { tr '\0' '\n' <"$environ"; } 2>/dev/null | grep -qxF "TMPDIR=$work"; then left+=("$pid"); fi
done
if [[ ${#left[@]} -gt 0 ]]; then
  ps -o pid,args -p "${left[@]}" >&2 || true
  kill -KILL "${left[@]}" 2>/dev/null || true
  fail "processes left behind: ${left[*]}"
fi
[[ -z "$(ls -A "$work")" ]] || fail "the demo left files behind: $(ls -A "$work")"
echo "demo_test: ok (no process, no file left behind)"
