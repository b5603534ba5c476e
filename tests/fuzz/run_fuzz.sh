#!/bin/sh
# Builds the fuzz target with clang (libFuzzer + ASan + UBSan) in a small
# side project and runs it for a bounded time over tests/fuzz/corpus.
#   run_fuzz.sh <repo dir> <work dir> [seconds]
# Exit 77 (CTest: skipped) only when clang++ is missing.
set -eu
repo=$1
work=$2
seconds=${3:-${CATGA_FUZZ_SECONDS:-60}}

cxx=""
for c in clang++-14 clang++; do
  if command -v "$c" > /dev/null 2>&1; then cxx=$(command -v "$c"); break; fi
done
if [ -z "$cxx" ]; then
  echo "########################################################################"
  echo "# SKIPPED: fuzz_message_decoding needs clang++ (apt-get install clang)  #"
  echo "########################################################################"
  exit 77
fi

mkdir -p "$work"
launcher=""
if command -v ccache > /dev/null 2>&1; then
  launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
  # Cache hits whatever the build directory is (CTest's, a developer's).
  export CCACHE_BASEDIR="$repo" CCACHE_NOHASHDIR=1
fi
cmake -S "$repo/tests/fuzz/project" -B "$work/build" -DCMAKE_BUILD_TYPE= \
  -DCMAKE_CXX_COMPILER="$cxx" -DCATGA_SOURCE_DIR="$repo" $launcher > "$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; exit 1; }
start=$(date +%s)
cmake --build "$work/build" -j2 > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
echo "fuzz target built in $(( $(date +%s) - start )) s; fuzzing for $seconds s"

# New inputs go to a scratch corpus; the kept seeds stay as they are.
mkdir -p "$work/corpus" "$work/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# -error_exitcode: libFuzzer reports a finding with 77 by default, which
# CTest would take for "skipped" (SKIP_RETURN_CODE is for a missing clang).
"$work/build/fuzz_message_decoding" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
  -error_exitcode=1 -timeout_exitcode=1 \
  -print_final_stats=1 -dict="$repo/tests/fuzz/message.dict" -artifact_prefix="$work/artifacts/" \
  "$work/corpus" "$repo/tests/fuzz/corpus"
