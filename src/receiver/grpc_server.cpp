#include "receiver/grpc_server.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <grpcpp/security/server_credentials.h>
#include <spdlog/spdlog.h>

#include "common/rate_limited_log.hpp"
#include "google/rpc/retry_info.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"
#include "otlp/types.hpp"
#include "routing/experiment_selector.hpp"

namespace proxy::receiver {
namespace {

using TraceService = opentelemetry::proto::collector::trace::v1::TraceService;

// Trailing metadata the Python OTLP exporter reads its retry delay from (opentelemetry-python's
// grpc exporter.py); other clients read the RetryInfo inside grpc-status-details-bin. Both carry
// the same bytes.
constexpr std::string_view kRetryInfoTrailer = "google.rpc.retryinfo-bin";
constexpr std::string_view kAuthorizationKey = "authorization";

// Per-call streams one connection may have open: OTLP exporters send one Export at a time, so
// this only bounds a client that opens streams without end. 100 is HTTP/2's recommended floor.
constexpr int kMaxConcurrentStreams = 100;
// How often a client may ping with no call in flight (gRPC's default is 5 minutes, which makes
// a client with keep-alive pings every 30 s or so get GOAWAY "too_many_pings").
constexpr int kMinClientPingIntervalMs = 10'000;
// Server pings on a quiet connection, and how long the answer may take: a peer that vanished
// (no FIN, as behind a NAT or a dead host) frees its connection within about a minute and a half.
constexpr int kKeepaliveTimeMs = 60'000;
constexpr int kKeepaliveTimeoutMs = 20'000;

int as_channel_ms(std::chrono::milliseconds duration) {
  return static_cast<int>(std::min<std::chrono::milliseconds::rep>(duration.count(), INT_MAX));
}

// The listener's connection limits; the HTTP listener has the same idle timeout. gRPC 1.51 has no
// cap on incoming connections (GRPC_ARG_MAX_ALLOWED_INCOMING_CONNECTIONS came later): idle
// connections are closed instead, and the byte budget bounds what all of them can queue.
void set_connection_limits(grpc::ServerBuilder& builder, const config::ReceiverConfig& config) {
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, as_channel_ms(config.idle_timeout));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kMaxConcurrentStreams);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kMinClientPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

// The first value of a metadata key (gRPC lower-cases keys on the wire).
std::optional<std::string_view> metadata_value(const grpc::CallbackServerContext& context,
                                               std::string_view key) {
  const auto& metadata = context.client_metadata();
  const auto found = metadata.find(grpc::string_ref(key.data(), key.size()));
  if (found == metadata.end()) return std::nullopt;
  return std::string_view(found->second.data(), found->second.size());
}

std::string read_pem(const std::string& path, std::string_view setting) {
  std::ifstream file(path, std::ios::binary);
  std::string text;
  if (file) text.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  if (!file || file.bad() || text.empty()) {
    throw config::ConfigError("receiver.tls." + std::string(setting) + ": cannot read \"" + path +
                              "\" (or it is empty)");
  }
  return text;
}

std::shared_ptr<grpc::ServerCredentials> credentials_for(const config::ReceiverTlsConfig& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      tls.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_key_cert_pairs.push_back(
      {read_pem(tls.key_file, "key_file"), read_pem(tls.cert_file, "cert_file")});
  if (!tls.client_ca_file.empty()) options.pem_root_certs = read_pem(tls.client_ca_file, "client_ca_file");
  return grpc::SslServerCredentials(options);
}

// A retryable refusal: the code, the message, and google.rpc.RetryInfo both in the status
// details (grpc-status-details-bin) and in the trailer the Python SDK reads.
grpc::Status retryable(grpc::CallbackServerContext& context, grpc::StatusCode code,
                       const std::string& message, std::chrono::seconds retry_after) {
  google::rpc::RetryInfo retry_info;
  retry_info.mutable_retry_delay()->set_seconds(retry_after.count());
  const std::string retry_info_bytes = retry_info.SerializeAsString();
  context.AddTrailingMetadata(std::string(kRetryInfoTrailer), retry_info_bytes);
  google::rpc::Status details;
  details.set_code(static_cast<int>(code));
  details.set_message(message);
  auto* any = details.add_details();
  any->set_type_url("type.googleapis.com/google.rpc.RetryInfo");
  any->set_value(retry_info_bytes);
  return grpc::Status(code, message, details.SerializeAsString());
}

}  // namespace

class GrpcServer::Service final
    : public TraceService::WithRawCallbackMethod_Export<TraceService::Service> {
 public:
  Service(ExportHandler& handler, ReceiverStats& stats) : handler_(handler), stats_(stats) {}

  grpc::ServerUnaryReactor* Export(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    std::string peer = context->peer();

    // 1. Inbound authentication, before anything is decoded.
    if (!handler_.authorized(metadata_value(*context, kAuthorizationKey).value_or(""))) {
      bump(stats_.rejected_unauthenticated);
      refuse_early(*reactor, peer,
             grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "missing or wrong \"authorization: Bearer <token>\" metadata "
                          "(receiver.auth)"));
      return reactor;
    }

    // 2. A call whose deadline passed (or that the client cancelled) is not enqueued: the
    // client has already given up on it and will retry or drop it itself.
    if (context->IsCancelled() || context->deadline() <= std::chrono::system_clock::now()) {
      bump(stats_.rejected_deadline);
      refuse_early(*reactor, peer,
             grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          "the call's deadline passed before the proxy could take it"));
      return reactor;
    }

    // 3. The message as one contiguous buffer (gRPC has decompressed it and checked its size
    // against receiver.max_body_bytes).
    std::vector<grpc::Slice> slices;
    if (!request->Dump(&slices).ok()) {
      refuse_early(*reactor, peer, grpc::Status(grpc::StatusCode::INTERNAL, "cannot read the message"));
      return reactor;
    }
    thread_local std::string joined;
    std::string_view body;
    if (slices.size() == 1) {
      body = std::string_view(reinterpret_cast<const char*>(slices[0].begin()), slices[0].size());
    } else {
      joined.clear();
      joined.reserve(request->Length());
      for (const grpc::Slice& slice : slices) {
        joined.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
      }
      body = joined;
    }

    // 4. The shared pipeline; x-mlflow-experiment-id metadata routes like the HTTP header.
    std::shared_ptr<queue::CommitTicket> commit;
    IngestOutcome outcome = handler_.ingest(
        body, otlp::BodyEncoding::protobuf,
        metadata_value(*context, routing::kExperimentHeader), peer, &commit);
    if (joined.capacity() > kKeptBufferBytes) std::string().swap(joined);
    slices.clear();

    if (commit) {
      // durability: disk: answer (and count) once the spool has the spans, without holding
      // this thread.
      commit->on_complete([this, context, reactor, response, outcome = std::move(outcome),
                           peer = std::move(peer)](bool stored) mutable {
        if (!stored) {
          bump(stats_.rejected_storage_error);
          const std::uint64_t spans = outcome.spans;
          outcome = {IngestOutcome::Kind::storage_error,
                     "the proxy could not write the spans to its spool; retry later",
                     outcome.rejected_spans};
          outcome.spans = spans;
        }
        handler_.count(ReceiverStats::kGrpc, ReceiverStats::kProtobuf, outcome);
        answer(*context, *reactor, *response, outcome, peer);
      });
      return reactor;
    }
    handler_.count(ReceiverStats::kGrpc, ReceiverStats::kProtobuf, outcome);
    answer(*context, *reactor, *response, outcome, peer);
    return reactor;
  }

 private:
  // A buffer that grew past this for one large message is given back afterwards.
  static constexpr std::size_t kKeptBufferBytes = 8 * 1024 * 1024;

  void answer(grpc::CallbackServerContext& context, grpc::ServerUnaryReactor& reactor,
              grpc::ByteBuffer& response, const IngestOutcome& outcome, const std::string& peer) {
    using Kind = IngestOutcome::Kind;
    switch (outcome.kind) {
      case Kind::accepted: {
        // OK, with partial_success when spans were rejected (or the request had none).
        std::string bytes = otlp::encode_export_response(otlp::BodyEncoding::protobuf,
                                                         outcome.rejected_spans, outcome.warning);
        grpc::Slice slice(bytes);
        response = grpc::ByteBuffer(&slice, 1);
        reactor.Finish(grpc::Status::OK);
        return;
      }
      case Kind::bad_request:
        refuse(reactor, peer, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, outcome.message));
        return;
      case Kind::too_large:
        // A permanent refusal of this request (smaller batches would pass): RESOURCE_EXHAUSTED
        // without RetryInfo, which OTLP clients do not retry.
        refuse(reactor, peer, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, outcome.message));
        return;
      case Kind::queue_full:
        // Backpressure the proxy recovers from: RESOURCE_EXHAUSTED is retryable only with
        // RetryInfo (OTLP spec, "Failures"), which it carries.
        refuse(reactor, peer,
               retryable(context, grpc::StatusCode::RESOURCE_EXHAUSTED, outcome.message,
                         handler_.retry_after()));
        return;
      case Kind::draining:
      case Kind::storage_error:
        refuse(reactor, peer,
               retryable(context, grpc::StatusCode::UNAVAILABLE, outcome.message,
                         handler_.retry_after()));
        return;
    }
  }

  // A call refused before the pipeline saw it (authentication, deadline, unreadable message).
  void refuse_early(grpc::ServerUnaryReactor& reactor, const std::string& peer,
                    grpc::Status status) {
    bump(stats_.by_protocol[ReceiverStats::kGrpc]
             .requests[ReceiverStats::kProtobuf][ReceiverStats::kRejected]);
    refuse(reactor, peer, std::move(status));
  }

  void refuse(grpc::ServerUnaryReactor& reactor, const std::string& peer, grpc::Status status) {
    std::uint64_t suppressed = 0;
    if (reject_log_.allow(suppressed)) {
      spdlog::warn("rejected gRPC Export from {}: code {} {} ({} similar rejections not logged)",
                   peer, static_cast<int>(status.error_code()), status.error_message(),
                   suppressed);
    }
    reactor.Finish(status);
  }

  ExportHandler& handler_;
  ReceiverStats& stats_;
  RateLimitedLog reject_log_;
};

GrpcServer::GrpcServer(const config::ReceiverConfig& config, ExportHandler& handler,
                       ReceiverStats& stats)
    : config_(config), service_(std::make_unique<Service>(handler, stats)) {}

GrpcServer::~GrpcServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

void GrpcServer::start() {
  const std::string address = config_.grpc.listen.to_string();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, credentials_for(config_.tls), &port_);
  // gRPC sets SO_REUSEPORT by default: a second proxy on the same port would then share it
  // silently instead of failing to start.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // The same limit as an HTTP body after decompression (gRPC checks the decompressed size too).
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.max_body_bytes));
  set_connection_limits(builder, config_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    throw std::runtime_error("cannot listen for OTLP/gRPC on " + address +
                             " (address in use, not local, or bad TLS files?)");
  }
}

void GrpcServer::shutdown(std::chrono::steady_clock::time_point deadline) {
  if (!server_) return;
  const auto left = deadline - std::chrono::steady_clock::now();
  server_->Shutdown(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(left));
}

}  // namespace proxy::receiver
