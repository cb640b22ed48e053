// Spans per CPU-second for the policy stage alone, on GenAI-sized spans (a 1.5 KB prompt,
// a 1 KB answer, system instructions, a message event, the usual small attributes), next to
// the protobuf decode of the same spans, which the policy follows on the hot path.
//
//   policy_bench [seconds per measurement, default 1] [structure: only the structure-kept rows]
//                [one row of those, e.g. 40/mask/kept: for a per-row instruction count]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include <google/protobuf/arena.h>

#include "otlp/types.hpp"
#include "policy/policy.hpp"
#include "policy/wire_policy.hpp"

namespace {

using namespace proxy;
using Clock = std::chrono::steady_clock;

// The measured sections are timed in this thread's CPU time, not wall time: the figures are CPU
// per span, and another process taking the core mid-measurement does not count against them.
Clock::duration cpu_now() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(now.tv_sec) +
                                                     std::chrono::nanoseconds(now.tv_nsec));
}

constexpr int kSpansPerRequest = 100;

std::string prose(std::size_t bytes, int salt) {
  static const char* words[] = {"the",    "quarterly", "report", "covers", "revenue", "costs",
                                "hiring", "and",       "outlook", "for",   "each",    "region",
                                "please", "summarize", "briefly", "with",  "numbers", "tables"};
  std::string text;
  int i = salt;
  while (text.size() < bytes) {
    text += words[static_cast<std::size_t>(i++) % (sizeof words / sizeof *words)];
    text += (i % 13 == 0) ? ". " : " ";
  }
  text.resize(bytes);
  return text;
}

void set(google::protobuf::RepeatedPtrField<otlp::KeyValue>& attributes, const char* key,
         const std::string& value) {
  auto* kv = attributes.Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

void set_int(google::protobuf::RepeatedPtrField<otlp::KeyValue>& attributes, const char* key,
             std::int64_t value) {
  auto* kv = attributes.Add();
  kv->set_key(key);
  kv->mutable_value()->set_int_value(value);
}

std::string make_request(bool with_secret) {
  otlp::ExportRequest request;
  auto* resource_spans = request.add_resource_spans();
  set(*resource_spans->mutable_resource()->mutable_attributes(), "service.name", "bench-agent");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("ai.koog.agents.features.opentelemetry");
  for (int i = 0; i < kSpansPerRequest; ++i) {
    otlp::Span* span = scope_spans->add_spans();
    span->set_trace_id(std::string(16, static_cast<char>(1 + i % 7)));
    span->set_span_id(std::string(8, static_cast<char>(1 + i % 5)));
    span->set_name("chat gpt-4o");
    span->set_start_time_unix_nano(1'700'000'000'000'000'000ULL);
    span->set_end_time_unix_nano(1'700'000'001'000'000'000ULL);
    auto& attributes = *span->mutable_attributes();
    set(attributes, "gen_ai.operation.name", "chat");
    set(attributes, "gen_ai.provider.name", "openai");
    set(attributes, "gen_ai.request.model", "gpt-4o");
    set(attributes, "gen_ai.response.model", "gpt-4o-2024-08-06");
    set(attributes, "gen_ai.response.id", "chatcmpl-8x7y6z");
    set_int(attributes, "gen_ai.usage.input_tokens", 412);
    set_int(attributes, "gen_ai.usage.output_tokens", 233);
    set(attributes, "gen_ai.conversation.id", "run-42");
    set(attributes, "koog.node.id", "nodeCallLLM");
    std::string prompt = "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"" + prose(1500, i) + "\"}]}]";
    if (with_secret && i % 10 == 0) prompt.insert(200, " mail jane.doe@example.com ");
    set(attributes, "gen_ai.input.messages", prompt);
    set(attributes, "gen_ai.output.messages",
        "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"" + prose(1000, i + 3) + "\"}]}]");
    set(attributes, "gen_ai.system_instructions", prose(400, i + 7));
    auto* event = span->add_events();
    event->set_name("gen_ai.choice");
    set(*event->mutable_attributes(), "finish_reason", "stop");
    set_int(*event->mutable_attributes(), "index", 0);
    span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_OK);
  }
  return request.SerializeAsString();
}

// A Koog 1.x chat span: the conversation as GenAI messages (system, user, an assistant tool call,
// the tool's answer), the system prompt again as system_instructions, the answer as output
// messages; each text `text_bytes` long.
std::string make_koog_request(std::size_t text_bytes) {
  otlp::ExportRequest request;
  auto* resource_spans = request.add_resource_spans();
  set(*resource_spans->mutable_resource()->mutable_attributes(), "service.name", "koog-agent");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("ai.koog.agents.features.opentelemetry");
  const auto text_part = [](const std::string& text) {
    return R"({"type":"text","content":")" + text + R"("})";
  };
  for (int i = 0; i < kSpansPerRequest; ++i) {
    otlp::Span* span = scope_spans->add_spans();
    span->set_trace_id(std::string(16, static_cast<char>(1 + i % 7)));
    span->set_span_id(std::string(8, static_cast<char>(1 + i % 5)));
    span->set_name("chat gpt-4o");
    auto& attributes = *span->mutable_attributes();
    set(attributes, "gen_ai.operation.name", "chat");
    set(attributes, "gen_ai.request.model", "gpt-4o");
    set_int(attributes, "gen_ai.usage.input_tokens", 412);
    set_int(attributes, "gen_ai.usage.output_tokens", 233);
    const std::string system = prose(text_bytes, i + 7);
    set(attributes, "gen_ai.input.messages",
        R"([{"role":"system","parts":[)" + text_part(system) + R"(]},{"role":"user","parts":[)" +
            text_part(prose(text_bytes, i)) +
            R"(]},{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"search",)"
            R"("arguments":{"query":")" + prose(text_bytes / 8 + 8, i + 1) +
            R"(","limit":5}}]},{"role":"tool","parts":[{"type":"tool_call_response","id":"call_1","response":")" +
            prose(text_bytes, i + 2) + R"("}]}])");
    set(attributes, "system_instructions", "[" + text_part(system) + "]");
    set(attributes, "gen_ai.output.messages",
        R"([{"role":"assistant","parts":[)" + text_part(prose(text_bytes, i + 3)) +
            R"(],"finish_reason":"stop"}])");
  }
  return request.SerializeAsString();
}

struct Result {
  double spans_per_second;
  double ns_per_span;
};

template <class Body>
Result measure(double seconds, Body&& body) {
  std::uint64_t spans = 0;
  Clock::duration busy{};
  const auto stop = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < stop) busy += body(spans);
  const double busy_s = std::chrono::duration<double>(busy).count();
  return {static_cast<double>(spans) / busy_s, busy_s * 1e9 / static_cast<double>(spans)};
}

// Decodes `copies` requests on an arena (untimed), then times `apply` over all of them.
Result measure_policy(double seconds, const std::string& body, const policy::CompiledPolicy& compiled,
                      policy::PolicyTally& tally) {
  constexpr int kCopies = 20;
  return measure(seconds, [&](std::uint64_t& spans) {
    google::protobuf::Arena arena;
    std::vector<otlp::ExportRequest*> requests;
    for (int i = 0; i < kCopies; ++i) {
      auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
      if (!request->ParseFromString(body)) std::abort();
      requests.push_back(request);
    }
    const auto start = cpu_now();
    for (otlp::ExportRequest* request : requests) {
      for (auto& resource_spans : *request->mutable_resource_spans()) policy::apply(compiled, resource_spans, tally);
    }
    const auto elapsed = cpu_now() - start;
    spans += kCopies * kSpansPerRequest;
    return elapsed;
  });
}

// The same policy on the wire, as the daemon runs it (WireRewriter: one pass over the bytes).
Result measure_wire_policy(double seconds, const std::string& body, const policy::CompiledPolicy& compiled,
                           policy::PolicyTally& tally) {
  constexpr int kCopies = 20;
  thread_local policy::WireRewriter rewriter;
  std::string out;
  return measure(seconds, [&](std::uint64_t& spans) {
    const auto start = cpu_now();
    for (int i = 0; i < kCopies; ++i) {
      out.clear();
      if (rewriter.rewrite(compiled, body, out, tally).outcome != policy::WireOutcome::rewritten) std::abort();
    }
    const auto elapsed = cpu_now() - start;
    spans += kCopies * kSpansPerRequest;
    return elapsed;
  });
}

void print(const char* what, const Result& result, double decode_ns) {
  std::printf("%-44s %12.0f spans/s/core %9.0f ns/span %7.2fx decode\n", what, result.spans_per_second,
              result.ns_per_span, result.ns_per_span / decode_ns);
}

// Structure-kept against whole-value masking on Koog chat spans (4 messages, system
// instructions, the answer), short and ~1.5 KB texts.
void bench_structure(double seconds, double decode_ns, policy::PolicyTally& tally, std::string_view only = {}) {
  for (const std::size_t text_bytes : {std::size_t{40}, std::size_t{1500}}) {
    const std::string koog = make_koog_request(text_bytes);
    std::printf("Koog chat spans, %zu-byte texts: %zu bytes/span\n", text_bytes, koog.size() / kSpansPerRequest);
    double whole_ns = 0;
    double wire_whole_ns = 0;
    for (const config::PolicyMode mode : {config::PolicyMode::mask, config::PolicyMode::hash}) {
      for (const bool keep : {false, true}) {
        char row[32];
        std::snprintf(row, sizeof row, "%zu/%s/%s", text_bytes, mode == config::PolicyMode::mask ? "mask" : "hash",
                      keep ? "kept" : "whole");
        if (!only.empty() && only != row) continue;
        config::PolicyConfig config;
        config.content = mode;
        config.keep_structure = keep;
        const policy::CompiledPolicy compiled(config);
        const Result result = measure_policy(seconds, koog, compiled, tally);
        const Result wire = measure_wire_policy(seconds, koog, compiled, tally);
        if (!keep) whole_ns = result.ns_per_span;
        if (!keep) wire_whole_ns = wire.ns_per_span;
        char name[64];
        std::snprintf(name, sizeof name, "  %s, structure %s", mode == config::PolicyMode::mask ? "mask" : "hash",
                      keep ? "kept" : "whole");
        print(name, result, decode_ns);
        if (keep && whole_ns > 0) std::printf("  %-42s %.2fx whole-value\n", "", result.ns_per_span / whole_ns);
        std::snprintf(name, sizeof name, "    on the wire (WireRewriter)");
        print(name, wire, decode_ns);
        if (keep && wire_whole_ns > 0) {
          std::printf("  %-42s %.2fx whole-value on the wire\n", "", wire.ns_per_span / wire_whole_ns);
        }
      }
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const std::string plain = make_request(false);
  const std::string with_secrets = make_request(true);
  std::printf("request: %d spans, %zu bytes protobuf (%zu bytes/span)\n", kSpansPerRequest, plain.size(),
              plain.size() / kSpansPerRequest);

  const Result decode = measure(seconds, [&](std::uint64_t& spans) {
    const auto start = cpu_now();
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
    if (!request->ParseFromString(plain)) std::abort();
    spans += kSpansPerRequest;
    return cpu_now() - start;
  });
  std::printf("%-44s %12.0f spans/s/core %9.0f ns/span\n", "protobuf decode (arena)", decode.spans_per_second,
              decode.ns_per_span);
  policy::PolicyTally tally;
  if (argc > 2 && std::string_view(argv[2]) == "structure") {
    bench_structure(seconds, decode.ns_per_span, tally, argc > 3 ? std::string_view(argv[3]) : std::string_view{});
    return 0;
  }

  auto run = [&](const char* name, config::PolicyMode mode, const std::string& body) {
    config::PolicyConfig config;
    config.content = mode;
    const policy::CompiledPolicy compiled(config);
    print(name, measure_policy(seconds, body, compiled, tally), decode.ns_per_span);
  };
  run("policy verbose (walk only)", config::PolicyMode::verbose, plain);
  run("policy mask (default, structure kept)", config::PolicyMode::mask, plain);
  run("policy hash (SHA-256)", config::PolicyMode::hash, plain);
  run("policy truncate 256", config::PolicyMode::truncate, plain);
  run("policy redact, built-in patterns, clean text", config::PolicyMode::redact, plain);
  run("policy redact, built-in, 1 in 10 with e-mail", config::PolicyMode::redact, with_secrets);
  {
    config::PolicyConfig config;
    config.content = config::PolicyMode::redact;
    config.redact_patterns.push_back({"ticket", "TICKET-[0-9]{4,}"});
    const policy::CompiledPolicy compiled(config);
    print("policy redact, built-in + 1 user pattern", measure_policy(seconds, plain, compiled, tally),
          decode.ns_per_span);
  }
  std::printf("(redaction matches counted: %llu)\n", static_cast<unsigned long long>(tally.redaction_matches));

  bench_structure(seconds, decode.ns_per_span, tally);

  // The redactor alone over one span's content (2.9 KB in three values), with and without the
  // prefilter that skips RE2 for values no built-in pattern can match.
  const std::vector<std::string> content{prose(1500, 1), prose(1000, 4), prose(400, 8)};
  const std::vector<std::string> busy{
      "See https://docs.example.com/v2/report?id=1234 for the 2024 figures: revenue 1,234,567 and "
      "costs 987,654 - up 12% - key points: growth. " + prose(1400, 1),
      prose(1000, 4), prose(400, 8)};
  for (bool prefilter : {false, true}) {
    const policy::Redactor redactor({}, true, prefilter);
    for (const auto* texts : {&content, &busy}) {
      std::string out;
      const Result result = measure(seconds, [&](std::uint64_t& spans) {
        const auto start = cpu_now();
        for (int i = 0; i < 100; ++i) {
          for (const std::string& text : *texts) {
            out.clear();
            if (redactor.redact(text, out) != 0) std::abort();
          }
        }
        spans += 100;
        return cpu_now() - start;
      });
      char name[64];
      std::snprintf(name, sizeof name, "redactor alone, %s, %s", prefilter ? "prefilter" : "RE2 on every value",
                    texts == &content ? "prose" : "URLs+digits");
      print(name, result, decode.ns_per_span);
    }
  }
  return 0;
}
