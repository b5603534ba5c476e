#!/bin/sh
# The `tsan` CTest test (tests/tsan/CMakeLists.txt): configures a second build
# of this repository with -fsanitize=thread in <work dir>/build, builds only
# the listed test executables (and the libraries they link) and runs them
# through that build's own CTest. The build directory is kept, so a second
# run recompiles only what changed.
#   run_tsan.sh <repo> <work dir> <cmake> <ctest> <generator> <c++ compiler> <jobs> <test,test,...>
# Any ThreadSanitizer report fails the run: halt_on_error=1 ends the process
# with exit code 66 at the first one.
set -eu
repo=$1 work=$2 cmake=$3 ctest=$4 generator=$5 cxx=$6 jobs=$7
tests=$(printf '%s' "$8" | tr ',' ' ')
# Bounds of the build (the first one compiles ~60 files under -fsanitize=thread).
build_timeout=${CATGA_TSAN_BUILD_TIMEOUT:-1800}

build="$work/build"
flags="-fsanitize=thread -O1 -g1"
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
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread \
  -DCATGA_BUILD_TESTS=ON -DCATGA_BUILD_EXAMPLES=OFF -DCATGA_BUILD_BENCH=OFF -DCATGA_INSTALL=OFF \
  -DCATGA_WITH_NATS=ON -DCATGA_TSAN_TEST=OFF > "$work/configure.log" 2>&1 \
  || { cat "$work/configure.log"; exit 1; }
# nice: inside the full suite the other tests (some time-sensitive) get the
# CPU first; the build takes what they leave.
# shellcheck disable=SC2086 # one target per word
timeout "$build_timeout" nice -n 10 "$cmake" --build "$build" -j"$jobs" --target $tests > "$work/build.log" 2>&1 \
  || { status=$?; cat "$work/build.log"
       if [ $status -eq 124 ]; then echo "tsan: build stopped after ${build_timeout} s"; fi
       exit 1; }
echo "tsan: configured and built in $(( $(date +%s) - start )) s ($cxx $flags)"

# second_deadlock_stack: both stacks of a lock-order report. Options given in
# the environment come last, so they win.
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
regex="^($(printf '%s' "$tests" | tr ' ' '|'))\$"
start=$(date +%s)
status=0
# One at a time: the tests keep the timeouts of the main build, and the
# suite around this test already uses the other core.
"$ctest" --test-dir "$build" --output-on-failure -j1 -R "$regex" || status=$?
echo "tsan: tests ran in $(( $(date +%s) - start )) s (TSAN_OPTIONS=$TSAN_OPTIONS)"
exit $status
