# First version; a hardened image with healthcheck and spool volume comes with the service issue.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends build-essential cmake ninja-build \
      pkg-config libboost1.81-dev libboost-json1.81-dev libprotobuf-dev protobuf-compiler \
      libspdlog-dev libyaml-cpp-dev zlib1g-dev libzstd-dev libssl-dev libre2-dev && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DPROXY_BUILD_TESTS=OFF \
 && cmake --build /build && strip /build/src/otlp-mlflow-proxy

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends libprotobuf32 libspdlog1.10 \
      libyaml-cpp0.7 libboost-json1.81.0 zlib1g libzstd1 libre2-9 libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 proxy
COPY --from=build /build/src/otlp-mlflow-proxy /usr/local/bin/otlp-mlflow-proxy
USER proxy
EXPOSE 4318
ENV OTLP_MLFLOW_PROXY_LISTEN=0.0.0.0:4318
ENTRYPOINT ["/usr/local/bin/otlp-mlflow-proxy"]
