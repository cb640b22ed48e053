// The OTLP/gRPC listener: opentelemetry.proto.collector.trace.v1.TraceService/Export with gRPC's
// callback API. A second front door to ExportHandler::ingest(), the pipeline OTLP/HTTP uses:
// the request arrives as raw bytes (gRPC has already undone gzip), is decoded by the same code,
// and the outcome becomes a gRPC status (OTLP spec, "OTLP/gRPC Response").
#pragma once

#include <chrono>
#include <memory>

#include "config/config.hpp"
#include "receiver/export_handler.hpp"
#include "receiver/stats.hpp"

namespace grpc {
class Server;
}

namespace proxy::receiver {

class GrpcServer {
 public:
  GrpcServer(const config::ReceiverConfig& config, ExportHandler& handler, ReceiverStats& stats);
  ~GrpcServer();
  GrpcServer(const GrpcServer&) = delete;
  GrpcServer& operator=(const GrpcServer&) = delete;

  // Binds receiver.grpc.listen (with receiver.tls when set) and starts serving. Throws
  // std::runtime_error naming the address when it cannot, config::ConfigError for unreadable
  // TLS files.
  void start();

  // The port bound, once started.
  int port() const { return port_; }

  // Stops accepting calls and waits for the ones in flight to be answered; at `deadline` those
  // still running are cancelled. New calls meanwhile are refused by gRPC (UNAVAILABLE).
  void shutdown(std::chrono::steady_clock::time_point deadline);

 private:
  class Service;
  const config::ReceiverConfig& config_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace proxy::receiver
