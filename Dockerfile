# The order-flow sample (samples/order-flow) as a container image, the one the
# Helm chart (helm/order-flow) runs:
#   docker build -t order-flow:0.1.0 .                       # or: bash scripts/container (podman)
#   docker run --rm -p 8080:8080 order-flow:0.1.0          # every service, in memory
# The chart runs one role per pod over NATS (SERVICE_NAME, NATS_URL, ...).
# Built and run by the test suite with podman (tests/container, CTest
# `container_image`): the deployment shape of the chart, on a real engine.

# --- build: the project's CMake, Release, the sample only ----------------------
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ccache \
      libnats-dev nlohmann-json3-dev libspdlog-dev libsqlite3-dev libcpp-httplib-dev libcli11-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Compiled through ccache, whose cache is a cache mount (BuildKit, buildah):
# after a source change, or from a fresh clone whose files all look new, a
# rebuild compiles only what changed (the whole project: ~6 min on 2 cores).
ENV CCACHE_DIR=/ccache
RUN --mount=type=cache,target=/ccache,id=catga-order-flow-ccache \
    ccache --zero-stats >/dev/null \
 && cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
      -DCATGA_BUILD_TESTS=OFF -DCATGA_BUILD_BENCH=OFF -DCATGA_BUILD_EXAMPLES=ON -DCATGA_INSTALL=OFF \
 && cmake --build /build -j"$(nproc)" --target order_flow \
 && strip /build/samples/order-flow/order-flow \
 && { ccache --show-stats | grep -E 'Hits|Misses' || true; }

# --- runtime: the shared libraries the binary needs, nothing else -------------
FROM debian:bookworm-slim
# ldd of the binary: libnats (pulls libssl3, libprotobuf-c1), libspdlog + libfmt,
# libcpp-httplib (pulls libbrotli1, zlib), libsqlite3 (the order list read
# model). ca-certificates: TLS to a NATS whose certificate comes from a public CA.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libnats3.4 libspdlog1.10 libfmt9 libcpp-httplib0.11 libsqlite3-0 ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 catga \
 && useradd --system --uid 10001 --gid catga --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin catga
COPY --from=build /build/samples/order-flow/order-flow /usr/local/bin/order-flow
# Fail the build, not the pod, when a library is missing.
RUN ! ldd /usr/local/bin/order-flow | grep 'not found'
USER 10001:10001
# Listen on every interface (the binary's default, 127.0.0.1, is unreachable in a pod).
ENV HTTP_HOST=0.0.0.0 HTTP_PORT=8080
EXPOSE 8080
# SIGTERM stops the services in order (at most ~20 s; the chart's grace period is 30 s).
ENTRYPOINT ["/usr/local/bin/order-flow"]
