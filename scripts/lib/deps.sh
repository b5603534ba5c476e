# Shared by scripts/demo, scripts/test and scripts/bench: source it, then call
#   catga_install_deps            # installs the Debian packages that are missing
#   catga_build <dir> <type> [cmake args...] [-- <targets...>]
# Nothing here needs more than a fresh Debian 12 with network access to apt.

# Everything the build, the tests and the tools need. clang and its runtime
# libraries are there for the sanitizer and fuzzing builds; libssl-dev (also
# pulled in by libcpp-httplib-dev) signs the test JWTs of tests/security.
CATGA_DEBIAN_PACKAGES=(
  build-essential cmake g++
  libnats-dev nats-server
  nlohmann-json3-dev libspdlog-dev
  doctest-dev libbenchmark-dev
  libsqlite3-dev libcpp-httplib-dev libcli11-dev
  libssl-dev
  clang libclang-rt-14-dev
)

catga_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

# Prints the packages of CATGA_DEBIAN_PACKAGES that are not installed.
catga_missing_packages() {
  local p
  for p in "${CATGA_DEBIAN_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      echo "$p"
    fi
  done
}

# Installs the missing packages with apt-get; does nothing (not even
# `apt-get update`) when all are present.
catga_install_deps() {
  local missing
  mapfile -t missing < <(catga_missing_packages)
  if [[ ${#missing[@]} -eq 0 ]]; then
    return 0
  fi
  echo "catga: installing ${missing[*]}" >&2
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then
      sudo=(sudo)
    else
      echo "catga: run as root, or install them yourself: apt-get install -y ${missing[*]}" >&2
      return 1
    fi
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

# Configures <dir> with CMAKE_BUILD_TYPE=<type> and the extra cmake
# arguments, then builds (the given targets, or all) with one job per core.
catga_build() {
  local dir="$1" type="$2"
  shift 2
  local configure=() targets=()
  while [[ $# -gt 0 && "$1" != "--" ]]; do
    configure+=("$1")
    shift
  done
  if [[ $# -gt 0 ]]; then
    shift
    targets=("$@")
  fi
  cmake -S "$catga_root" -B "$dir" -DCMAKE_BUILD_TYPE="$type" "${configure[@]}"
  if [[ ${#targets[@]} -gt 0 ]]; then
    cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"
  else
    cmake --build "$dir" -j"$(nproc)"
  fi
}
