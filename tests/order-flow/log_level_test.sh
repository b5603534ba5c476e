#!/usr/bin/env bash
# --log-level (and LOG_LEVEL) accept spdlog's level names only: an unknown
# name is a usage error (exit code 105, CLI11's ValidationError, naming the option), not
# a silent `off` (spdlog::level::from_str's answer to a name it does not know).
#   bash log_level_test.sh <order-flow binary>
set -uo pipefail
bin=$1
fail() {
  echo "log_level_test: $*" >&2
  exit 1
}

# The demo role against a port nobody listens on with one order ends at once
# whichever the level; only the option's check differs.
demo=(--role demo --order-url http://127.0.0.1:9 --orders 1 --concurrency 1 --timeout 1)

out="$("$bin" --log-level verbose "${demo[@]}" 2>&1)"
rc=$?
echo "--log-level verbose: exit $rc: $out"
[[ $rc -eq 105 ]] || fail "--log-level verbose: exit $rc, want 105"
grep -q -- "--log-level" <<<"$out" || fail "the error does not name --log-level"

out="$(LOG_LEVEL=Verbose "$bin" "${demo[@]}" 2>&1)"
rc=$?
echo "LOG_LEVEL=Verbose: exit $rc: $out"
[[ $rc -eq 105 ]] || fail "LOG_LEVEL=Verbose: exit $rc, want 105"
grep -q -- "--log-level" <<<"$out" || fail "the error does not name --log-level"

for level in trace debug info warn error critical off; do
  out="$("$bin" --log-level "$level" "${demo[@]}" 2>&1)"
  if grep -q -- "--log-level" <<<"$out"; then
    fail "--log-level $level was refused: $out"
  fi
done
echo "log_level_test: ok"
