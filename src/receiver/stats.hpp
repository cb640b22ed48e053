// What the receiver did, as plain relaxed atomics: cheap to bump on the hot path, read for logs
// and /metrics. Every reject has its own counter (shared by both doors); requests and spans are
// also counted per door (protocol), encoding and result, by the door once its answer is final.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace proxy::receiver {

struct ReceiverStats {
  using Counter = std::atomic<std::uint64_t>;

  Counter requests_compressed{0};
  // Protobuf requests checked, routed and rewritten on their bytes (no route normalizes).
  Counter requests_wire_path{0};
  // POST /v1/logs and /v1/metrics: answered 200, not forwarded (MLflow stores traces only).
  Counter logs_requests_discarded{0};
  Counter metrics_requests_discarded{0};
  Counter other_signal_bytes_discarded{0};

  Counter rejected_not_found{0};
  Counter rejected_method{0};
  Counter rejected_content_type{0};
  Counter rejected_encoding{0};
  Counter rejected_too_large{0};
  Counter rejected_header_too_large{0};
  Counter rejected_bad_body{0};       // undecodable: corrupt compression, protobuf or JSON
  Counter rejected_invalid_spans{0};  // every span invalid
  Counter rejected_routing{0};
  Counter rejected_queue_full{0};     // memory or disk budget
  Counter rejected_storage_error{0};  // the spool could not write or flush
  Counter rejected_draining{0};
  Counter rejected_unauthenticated{0};  // receiver.auth: missing or wrong bearer token
  Counter rejected_deadline{0};         // gRPC: the deadline passed before the call was taken
  Counter rejected_connection_limit{0};
  Counter rejected_header_count{0};         // more header fields than max_header_count
  Counter rejected_decompression_ratio{0};  // expanded past max_decompression_ratio
  Counter rejected_too_many_spans{0};       // more spans than max_spans_per_request
  Counter spans_attributes_trimmed{0};      // kept, but with attributes cut to the limits
  Counter attributes_dropped{0};            // attributes cut (also in dropped_attributes_count)
  Counter tls_handshake_failures{0};        // receiver.tls: bad or missing client certificate, protocol
  Counter tls_handshake_timeouts{0};        // receiver.tls: handshake not done in handshake_timeout
  Counter rejected_plaintext_on_tls{0};     // plaintext HTTP sent to the TLS port (answered 400)
  Counter idle_timeouts{0};                 // keep-alive connections closed for idling
  Counter read_timeouts{0};
  Counter connections_open{0};

  // Per door, by the request's encoding (its Content-Type; gRPC is always protobuf), for the
  // metrics' protocol, encoding and result labels: every answered request is counted once, as
  // accepted or as rejected (read timeouts get no answer and count only above). Fixed arrays, so
  // counting is an index and a relaxed add, no lookup.
  enum Protocol : std::size_t { kHttp, kGrpc, kProtocolCount };
  enum Encoding : std::size_t { kProtobuf, kJson, kOtherEncoding, kEncodingCount };
  enum RequestResult : std::size_t { kAccepted, kRejected, kRequestResultCount };
  enum SpanResult : std::size_t {
    kSpansAccepted,  // queued and acknowledged
    kSpansInvalid,   // dropped as invalid (partial_success, or a 400 when all were)
    kSpansRefused,   // decoded, but the whole request was refused (queue full, draining, ...)
    kSpanResultCount
  };
  struct DoorCounters {
    std::array<std::array<Counter, kRequestResultCount>, kEncodingCount> requests{};
    std::array<std::array<Counter, kSpanResultCount>, kEncodingCount> spans{};
  };
  std::array<DoorCounters, kProtocolCount> by_protocol{};

  // Sums over doors and encodings, for the shutdown log.
  std::uint64_t total_requests(RequestResult result) const {
    std::uint64_t total = 0;
    for (const DoorCounters& door : by_protocol) {
      for (const auto& encoding : door.requests) total += encoding[result].load(std::memory_order_relaxed);
    }
    return total;
  }
  std::uint64_t total_spans(SpanResult result) const {
    std::uint64_t total = 0;
    for (const DoorCounters& door : by_protocol) {
      for (const auto& encoding : door.spans) total += encoding[result].load(std::memory_order_relaxed);
    }
    return total;
  }
};

inline void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) {
  counter.fetch_add(by, std::memory_order_relaxed);
}

}  // namespace proxy::receiver
