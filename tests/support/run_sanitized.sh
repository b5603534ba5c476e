#!/bin/sh
# The `tsan` and `asan` CTest tests (tests/tsan, tests/asan): configures a
# second build of this repository with the sanitizer in <work dir>/build,
# builds only the listed test executables (and the libraries they link) and
# runs them through that build's own CTest. The build directory is kept, so a
# second run recompiles only what changed.
#   run_sanitized.sh <tsan|asan> <repo> <work dir> <cmake> <ctest> <generator> <c++ compiler> <jobs> <test,test,...>
# Any report fails the run: both sanitizers end the process at the first one
# (ThreadSanitizer with exit code 66, AddressSanitizer with 1).
set -eu
name=$1 repo=$2 work=$3 cmake=$4 ctest=$5 generator=$6 cxx=$7 jobs=$8
tests=$(printf '%s' "$9" | tr ',' ' ')
here=$(cd "$(dirname "$0")/.." && pwd)  # tests/

case $name in
  tsan)
    sanitize=-fsanitize=thread
    flags="$sanitize"
    # second_deadlock_stack: both stacks of a lock-order report.
    options_var=TSAN_OPTIONS
    options="halt_on_error=1:second_deadlock_stack=1"
    build_timeout=${CATGA_TSAN_BUILD_TIMEOUT:-1800} ;;
  asan)
    sanitize=-fsanitize=address
    flags="$sanitize -fno-omit-frame-pointer"
    options_var=ASAN_OPTIONS
    # max_free_fill_size: freed blocks (up to 4 KB) are overwritten, so a use
    # after free inside nats.c, which is not instrumented, reads garbage and
    # crashes (a SEGV report) rather than maybe passing unseen. Leaks inside
    # nats.c that catga cannot free go to tests/asan/lsan.supp.
    options="halt_on_error=1:detect_leaks=1:max_free_fill_size=4096"
    export LSAN_OPTIONS="suppressions=$here/asan/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
    build_timeout=${CATGA_ASAN_BUILD_TIMEOUT:-1800} ;;
  *) echo "run_sanitized.sh: unknown sanitizer '$name' (tsan or asan)"; exit 2 ;;
esac
flags="$flags -O1 -g1"

build="$work/build"
mkdir -p "$work"
launcher=""
if command -v ccache > /dev/null 2>&1; then
  launcher="-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"
  export CCACHE_BASEDIR="$repo" CCACHE_NOHASHDIR=1
fi
# Another compiler than last time: start afresh (CMake would drop the cache
# half-way through this configure).
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "^CMAKE_CXX_COMPILER:[A-Z]*=$cxx\$" "$build/CMakeCache.txt"; then
  rm -rf "$build"
fi
start=$(date +%s)
# CATGA_WITH_NATS stays ON: other test folders assume catga::nats exists.
"$cmake" -S "$repo" -B "$build" -G "$generator" -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_COMPILER="$cxx" $launcher \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$sanitize" \
  -DCMAKE_SHARED_LINKER_FLAGS="$sanitize" \
  -DCATGA_BUILD_TESTS=ON -DCATGA_BUILD_EXAMPLES=OFF -DCATGA_BUILD_BENCH=OFF -DCATGA_INSTALL=OFF \
  -DCATGA_WITH_NATS=ON -DCATGA_TSAN_TEST=OFF -DCATGA_ASAN_TEST=OFF > "$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; exit 1; }
# nice: inside the full suite the other tests (some time-sensitive) get the
# CPU first; the build takes what they leave.
# shellcheck disable=SC2086 # one target per word
timeout "$build_timeout" nice -n 10 "$cmake" --build "$build" -j"$jobs" --target $tests > "$work/build.log" 2>&1 \
  || { status=$?; cat "$work/build.log"
       if [ $status -eq 124 ]; then echo "$name: build stopped after ${build_timeout} s"; fi
       exit 1; }
echo "$name: configured and built in $(( $(date +%s) - start )) s ($cxx $flags)"

# Options given in the environment come last, so they win.
eval "current=\${$options_var:-}"
export "$options_var=$options${current:+:$current}"
regex="^($(printf '%s' "$tests" | tr ' ' '|'))\$"
start=$(date +%s)
status=0
# One at a time: the tests keep the timeouts of the main build, and the
# suite around this test already uses the other core.
"$ctest" --test-dir "$build" --output-on-failure -j1 -R "$regex" || status=$?
eval "current=\$$options_var"
echo "$name: tests ran in $(( $(date +%s) - start )) s ($options_var=$current)"
exit $status
