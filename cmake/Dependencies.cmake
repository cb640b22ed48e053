# Every dependency is a Debian 12 package; README.md lists them and scripts/install-deps.sh installs them.
find_package(Threads REQUIRED)
find_package(Boost 1.81.0 REQUIRED CONFIG COMPONENTS json)
find_package(Protobuf 3.21 REQUIRED)
# OTLP/gRPC receiver: libgrpc++-dev and protobuf-compiler-grpc (grpc_cpp_plugin).
find_package(gRPC 1.51 REQUIRED CONFIG)
find_package(spdlog REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(ZLIB REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
# Upstream gzip: libdeflate compresses a whole buffer (our batches are whole) two to three times
# faster than zlib at the same ratio.
pkg_check_modules(LIBDEFLATE REQUIRED IMPORTED_TARGET libdeflate)
# Policy: RE2 for linear-time redaction patterns, libcrypto for hashing content; libssl for TLS
# to MLflow and on the OTLP/HTTP listener (Asio ssl).
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)
find_package(OpenSSL 3 REQUIRED COMPONENTS Crypto SSL)
# Admin endpoint: prometheus-cpp's core (metric model, text format) without its civetweb exposer;
# systemd: sd_notify for Type=notify units.
find_package(prometheus-cpp CONFIG REQUIRED)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
# The daemon's allocator: decoding allocates a string per attribute and glibc's malloc and free
# were a fifth of the proxy's CPU; jemalloc's thread caches cut batched CPU per span by about a
# sixth. Not with sanitizers (they bring their own allocator) nor in the fuzz build.
if(PROXY_JEMALLOC AND NOT PROXY_SANITIZE AND NOT PROXY_FUZZ)
  pkg_check_modules(JEMALLOC REQUIRED IMPORTED_TARGET jemalloc)
endif()
