#!/usr/bin/env bash
# Checks that the code blocks in README.md and docs/*.md are exact copies of
# the regions of compiled sources they claim to quote (run by CTest, label docs).
#
#   bash scripts/lib/check_snippets.sh [repo-root]
#
# In a source (examples/*.cpp, samples/**/*.cpp), a region is marked:
#     // [snippet:NAME]
#     ...code...
#     // [/snippet:NAME]
# (the region's common indentation is removed). In Markdown, the quoting block follows a marker line:
#     <!-- snippet:NAME -->
#     ```cpp
#     ...the same code...
#     ```
set -euo pipefail

root="${1:-$(cd "$(dirname "$0")/../.." && pwd)}"
status=0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "check_snippets: $*" >&2
  status=1
}

declare -A snippet=()    # name -> text
declare -A origin=()     # name -> file:line
declare -A quoted=()     # name -> times quoted

open_re='^[[:space:]]*//[[:space:]]*\[snippet:([A-Za-z0-9_.-]+)\][[:space:]]*$'
close_re='^[[:space:]]*//[[:space:]]*\[/snippet:([A-Za-z0-9_.-]+)\][[:space:]]*$'

# Removes the indentation shared by every non-empty line.
dedent() {
  local text="$1" line min=-1 indent out=""
  while IFS= read -r line; do
    [[ -z "${line//[[:space:]]/}" ]] && continue
    indent="${line%%[![:space:]]*}"
    if [[ $min -lt 0 || ${#indent} -lt $min ]]; then
      min=${#indent}
    fi
  done <<<"$text"
  [[ $min -lt 0 ]] && min=0
  while IFS= read -r line; do
    out+="${line:$min}"$'\n'
  done <<<"$text"
  printf '%s' "${out%$'\n'}"
}

extract() {
  local file="$1" name="" body="" n=0 start=0 line
  while IFS= read -r line || [[ -n "$line" ]]; do
    n=$((n + 1))
    if [[ "$line" =~ $open_re ]]; then
      if [[ -n "$name" ]]; then
        fail "$file:$n: snippet '${BASH_REMATCH[1]}' opens inside '$name'"
        return
      fi
      name="${BASH_REMATCH[1]}"
      body=""
      start=$n
      if [[ -n "${snippet[$name]+set}" ]]; then
        fail "$file:$n: snippet '$name' already defined at ${origin[$name]}"
      fi
    elif [[ "$line" =~ $close_re ]]; then
      if [[ "${BASH_REMATCH[1]}" != "$name" ]]; then
        fail "$file:$n: '[/snippet:${BASH_REMATCH[1]}]' does not close '${name:-nothing}'"
        return
      fi
      snippet[$name]="$(dedent "$body")"$'\n'
      origin[$name]="$file:$start"
      name=""
    elif [[ -n "$name" ]]; then
      body+="$line"$'\n'
    fi
  done <"$file"
  [[ -z "$name" ]] || fail "$file:$start: snippet '$name' is never closed"
}

marker_re='^<!--[[:space:]]*snippet:([A-Za-z0-9_.-]+)[[:space:]]*-->[[:space:]]*$'
fence_re='^```(cpp|c\+\+)[[:space:]]*$'

check_markdown() {
  local file="$1" state=idle name="" body="" n=0 start=0 line
  while IFS= read -r line || [[ -n "$line" ]]; do
    n=$((n + 1))
    case "$state" in
      idle)
        if [[ "$line" =~ $marker_re ]]; then
          name="${BASH_REMATCH[1]}"
          start=$n
          state=fence
        fi
        ;;
      fence)
        if [[ -z "$line" ]]; then
          continue
        elif [[ "$line" =~ $fence_re ]]; then
          state=body
          body=""
        else
          fail "$file:$start: marker for '$name' is not followed by a \`\`\`cpp block"
          state=idle
        fi
        ;;
      body)
        if [[ "$line" == '```' ]]; then
          compare "$file" "$start" "$name" "$body"
          state=idle
        else
          body+="$line"$'\n'
        fi
        ;;
    esac
  done <"$file"
  [[ "$state" == idle ]] || fail "$file:$start: block for '$name' is never closed"
}

compare() {
  local file="$1" line="$2" name="$3" body="$4"
  checked=$((checked + 1))
  if [[ -z "${snippet[$name]+set}" ]]; then
    fail "$file:$line: no source defines snippet '$name'"
    return
  fi
  quoted[$name]=$(( ${quoted[$name]:-0} + 1 ))
  if [[ "$body" != "${snippet[$name]}" ]]; then
    printf '%s' "${snippet[$name]}" >"$tmp/source"
    printf '%s' "$body" >"$tmp/doc"
    fail "$file:$line: block '$name' differs from ${origin[$name]} (- source, + document):
$(diff -u --label source --label "$file" "$tmp/source" "$tmp/doc" || true)"
  fi
}

shopt -s nullglob globstar
for f in "$root"/examples/*.cpp "$root"/samples/**/*.cpp "$root"/tests/eventsourcing/*.cpp; do
  extract "$f"
done

checked=0
docs=("$root/README.md" "$root"/docs/*.md)
for f in "${docs[@]}"; do
  [[ -f "$f" ]] && check_markdown "$f"
done

if ! grep -Eq "$marker_re" "$root/README.md" 2>/dev/null; then
  fail "README.md quotes no snippet; its code example must come from a compiled source"
fi
for name in "${!snippet[@]}"; do
  [[ -n "${quoted[$name]+set}" ]] || echo "check_snippets: note: snippet '$name' (${origin[$name]}) is not quoted anywhere"
done

if [[ $status -eq 0 ]]; then
  echo "check_snippets: $checked block(s) match their sources"
fi
exit $status
