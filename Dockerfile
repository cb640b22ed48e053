# otlp-mlflow-proxy container image: built on Debian 12, run on debian:12-slim with only the
# runtime libraries, as a non-root user, the spool on a volume, /healthz as the health check.
#
#   docker build -t otlp-mlflow-proxy .     (where the daemon has no bridge: --network host)
#   docker run -p 4318:4318 -p 13133:13133 -e MLFLOW_TRACKING_URI=http://mlflow:5000 \
#     -v proxy-spool:/var/lib/otlp-mlflow-proxy otlp-mlflow-proxy
#
# Configuration: environment variables (MLFLOW_TRACKING_URI, MLFLOW_EXPERIMENT_NAME,
# OTLP_MLFLOW_PROXY_*; see --help), or mount a file over /etc/otlp-mlflow-proxy/config.yaml
# (routes and policies; `docker kill -s HUP` reloads them).

FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake \
      pkg-config libboost1.81-dev libboost-json1.81-dev libprotobuf-dev protobuf-compiler \
      libspdlog-dev libyaml-cpp-dev zlib1g-dev libzstd-dev libdeflate-dev libssl-dev libre2-dev \
      libjemalloc-dev \
      prometheus-cpp-dev libsystemd-dev libgrpc++-dev protobuf-compiler-grpc \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# What the build reads, and no more: a change to the tests or the documentation leaves this
# stage's cached layers standing.
COPY CMakeLists.txt CMakePresets.json ./
COPY cmake cmake
COPY proto proto
COPY src src
COPY fuzz fuzz
COPY bench bench
COPY deploy/debian deploy/debian
# The release preset of CMakePresets.json, as CI builds it, without the tests.
RUN cmake --preset release -B /build -DPROXY_BUILD_TESTS=OFF \
 && cmake --build /build --target otlp-mlflow-proxy --parallel "$(nproc)" \
 && strip /build/src/otlp-mlflow-proxy \
 && for lib in $(ldd /build/src/otlp-mlflow-proxy | awk '/=> \// {print $3}'); do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")"; \
    done | cut -d: -f1 | sort -u > /build/runtime-packages

FROM debian:12-slim
# The packages of the shared libraries the binary links (found by ldd and dpkg in the build stage,
# so a new dependency cannot be forgotten here), nothing else: no compiler, no shell tools added.
# apt's downloads and lists go in the same layer: not every base cleans them up by itself (the
# registry's images do, a debootstrapped one does not, and they were 116 MB of this layer).
COPY --from=build /build/runtime-packages /tmp/runtime-packages
RUN apt-get update \
 && xargs -a /tmp/runtime-packages apt-get install -y --no-install-recommends ca-certificates \
 && apt-get clean \
 && rm -rf /tmp/runtime-packages /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt \
      /var/log/dpkg.log \
 && useradd --system --uid 10001 --home-dir /var/lib/otlp-mlflow-proxy --shell /usr/sbin/nologin \
      --user-group otlp-proxy \
 && install -d -o otlp-proxy -g otlp-proxy -m 0700 /var/lib/otlp-mlflow-proxy
COPY --from=build /build/src/otlp-mlflow-proxy /usr/local/bin/otlp-mlflow-proxy
RUN if ldd /usr/local/bin/otlp-mlflow-proxy | grep 'not found'; then exit 1; fi \
 && /usr/local/bin/otlp-mlflow-proxy --version
COPY deploy/config.yaml /etc/otlp-mlflow-proxy/config.yaml
ENV OTLP_MLFLOW_PROXY_CONFIG=/etc/otlp-mlflow-proxy/config.yaml \
    OTLP_MLFLOW_PROXY_LISTEN=0.0.0.0:4318 \
    OTLP_MLFLOW_PROXY_GRPC_LISTEN=0.0.0.0:4317 \
    OTLP_MLFLOW_PROXY_ADMIN_LISTEN=0.0.0.0:13133
VOLUME /var/lib/otlp-mlflow-proxy
WORKDIR /var/lib/otlp-mlflow-proxy
# Not "proxy": Debian's base-passwd already has a system user of that name (uid 13).
USER otlp-proxy
EXPOSE 4318 4317 13133
# bash's /dev/tcp: no HTTP client in the image just for the health check.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/13133 && printf 'GET /healthz HTTP/1.0\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/otlp-mlflow-proxy"]
