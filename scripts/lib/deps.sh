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
  # Issue 24: the OTLP conformance test (json_format.Parse) and the test
  # that scrapes the sample with a real Prometheus server.
  python3-protobuf prometheus
  # The container test (tests/container): podman builds and runs the image
  # (runc: crun refuses hybrid cgroups), debootstrap makes its base image
  # (no registry needed), curl probes the pods.
  podman buildah runc debootstrap curl
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

# nats-server 2.10 from Debian 13 (trixie), beside Debian 12's 2.9.10, which
# stays the default: the cluster and fault tests also run against it
# (tests/CMakeLists.txt, CATGA_NATS_SERVER_NEXT). Debian 13's binary runs on
# Debian 12. The trixie suite is added with priority 100, so nothing else is
# ever installed from it, and the package is only unpacked into a directory
# of its own. Prints the binary's path; prints nothing (and warns) when it
# cannot be had, and the suite then runs against 2.9.10 alone.
catga_nats_server_next() {
  local dir="${CATGA_NATS_NEXT_DIR:-/opt/catga/nats-server-trixie}"
  local bin="$dir/usr/sbin/nats-server"
  if [[ -x "$bin" ]]; then
    echo "$bin"
    return 0
  fi
  if [[ $(id -u) -ne 0 ]]; then
    echo "catga: WARNING: not root, cannot fetch nats-server 2.10 from Debian 13; cluster and fault tests run on $(nats-server --version 2>/dev/null) only" >&2
    return 0
  fi
  local sources=/etc/apt/sources.list.d/catga-trixie.sources
  if [[ ! -f $sources ]]; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' >"$sources"
    printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >/etc/apt/preferences.d/catga-trixie
  fi
  local tmp
  tmp="$(mktemp -d)"
  chmod 755 "$tmp"
  if apt-get update -o Dir::Etc::sourcelist="$sources" -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 >&2 &&
     (cd "$tmp" && apt-get download nats-server/trixie >&2) &&
     mkdir -p "$dir" && dpkg-deb -x "$tmp"/nats-server_*.deb "$dir" && "$bin" --version >&2; then
    rm -rf "$tmp"
    echo "$bin"
    return 0
  fi
  rm -rf "$tmp"
  echo "catga: WARNING: nats-server 2.10 (Debian 13) could not be installed; cluster and fault tests run on $(nats-server --version 2>/dev/null) only" >&2
  return 0
}

# The OpenTelemetry protocol's Python classes (python3-opentelemetry-proto,
# generated from the official .proto files of opentelemetry-proto) from
# Debian 13, unpacked like nats-server 2.10 above: otel_proto_conformance
# checks the OTLP exporter's bodies with them (python3-protobuf's
# json_format.Parse; tests/otel). Prints the directory for PYTHONPATH;
# prints nothing (and warns) when it cannot be had: the test is then skipped.
catga_otel_proto_pythonpath() {
  local dir="${CATGA_OTEL_PROTO_DIR:-/opt/catga/opentelemetry-proto-trixie}"
  local path="$dir/usr/lib/python3/dist-packages"
  if [[ -f "$path/opentelemetry/proto/collector/trace/v1/trace_service_pb2.py" ]]; then
    echo "$path"
    return 0
  fi
  local sources=/etc/apt/sources.list.d/catga-trixie.sources
  if [[ $(id -u) -ne 0 || ! -f $sources ]]; then
    echo "catga: WARNING: cannot fetch python3-opentelemetry-proto from Debian 13; otel_proto_conformance is skipped" >&2
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  chmod 755 "$tmp"
  if (cd "$tmp" && apt-get download python3-opentelemetry-proto/trixie >&2) &&
     mkdir -p "$dir" && dpkg-deb -x "$tmp"/python3-opentelemetry-proto_*.deb "$dir"; then
    rm -rf "$tmp"
    echo "$path"
    return 0
  fi
  rm -rf "$tmp"
  echo "catga: WARNING: python3-opentelemetry-proto (Debian 13) could not be installed; otel_proto_conformance is skipped" >&2
  return 0
}
