// Spans per second per core for the normalize stage alone, on Koog-shaped GenAI spans: per
// trace of 10 spans, a root (create_agent), its invoke_agent with 1.5 KB of GenAI messages in and
// out, a strategy span, four node spans with ~1.5 KB koog.node.input/output JSON, two chat spans
// with 1.5 KB messages and a tool span; each span in its own ResourceSpans, as Koog sends them.
// Measured with verbose content (every JSON value parsed) and with masked content (the
// policy's markers, copied as they are), next to the protobuf decode of the same request.
// Then the rules alone (previews left out) per CPU-second on one core, on messages (decode,
// apply(), serialize, as the daemon runs them) and on the wire (WireNormalizer), on Koog-shaped
// requests of 50 and 512 spans (bench/agent_traffic.hpp) with short and ~1.5 KB content.
//
//   normalize_bench [seconds per measurement, default 1]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <google/protobuf/arena.h>

#include "agent_traffic.hpp"
#include "thread_cpu.hpp"
#include "normalize/normalize.hpp"
#include "normalize/preview_cache.hpp"
#include "normalize/wire_normalize.hpp"
#include "otlp/protobuf.hpp"
#include "otlp/types.hpp"

namespace {

using namespace proxy;
using Clock = std::chrono::steady_clock;

constexpr int kTracesPerRequest = 10;

std::string words(std::size_t bytes, int salt) {
  static const char* kWords[] = {"the", "weather", "in", "paris", "is", "sunny", "with", "light",
                                 "wind", "from", "the", "west", "and", "twenty", "one", "degrees"};
  std::string text;
  int i = salt;
  while (text.size() < bytes) {
    text += kWords[static_cast<std::size_t>(i++) % (sizeof kWords / sizeof *kWords)];
    text += ' ';
  }
  text.resize(bytes);
  return text;
}

std::string messages(std::size_t bytes, int salt) {
  return R"([{"role":"System","parts":[{"type":"text","content":"You are a helpful assistant."}]},)"
         R"({"role":"User","parts":[{"type":"text","content":")" +
         words(bytes, salt) + R"("}]}])";
}

void set(otlp::Span& span, const char* key, const std::string& value) {
  auto* kv = span.add_attributes();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

otlp::Span& add(otlp::ExportRequest& request, const std::string& name, int trace, int id,
                int parent) {
  auto* resource_spans = request.add_resource_spans();
  for (const char* key : {"service.name", "service.version", "telemetry.sdk.language", "os.type"}) {
    auto* kv = resource_spans->mutable_resource()->add_attributes();
    kv->set_key(key);
    kv->mutable_value()->set_string_value("bench-value");
  }
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("bench-agent");
  scope_spans->mutable_scope()->set_version("1.0.0");
  otlp::Span* span = scope_spans->add_spans();
  span->set_name(name);
  span->set_trace_id(std::string(15, '\x01') + static_cast<char>(trace));
  span->set_span_id(std::string(7, '\x02') + static_cast<char>(id));
  if (parent >= 0) span->set_parent_span_id(std::string(7, '\x02') + static_cast<char>(parent));
  span->set_kind(opentelemetry::proto::trace::v1::Span::SPAN_KIND_INTERNAL);
  set(*span, "gen_ai.conversation.id", "5e7da20f-6ff1-4c3c-8a83-e945c383d1d3");
  return *span;
}

std::string make_request(bool masked) {
  auto content = [masked](std::string text) {
    return masked ? "[masked: " + std::to_string(text.size()) + " bytes]" : text;
  };
  otlp::ExportRequest request;
  for (int t = 0; t < kTracesPerRequest; ++t) {
    otlp::Span& agent = add(request, "invoke_agent weather-agent", t, 1, 0);
    set(agent, "gen_ai.operation.name", "invoke_agent");
    set(agent, "gen_ai.input.messages", content(messages(1500, t)));
    set(agent, "gen_ai.output.messages", content(messages(1500, t + 1)));
    otlp::Span& strategy = add(request, "strategy weather_strategy", t, 2, 1);
    set(strategy, "koog.strategy.name", "weather_strategy");
    for (int n = 0; n < 4; ++n) {
      otlp::Span& node = add(request, "node call_llm", t, 3 + n, 2);
      set(node, "koog.node.id", "call_llm");
      set(node, "koog.node.input", content(R"({"text":")" + words(1500, n) + R"("})"));
      set(node, "koog.node.output", content("\"" + words(1500, n + 3) + "\""));
    }
    for (int c = 0; c < 2; ++c) {
      otlp::Span& chat = add(request, "chat gpt-4o", t, 7 + c, 4);
      set(chat, "gen_ai.operation.name", "chat");
      set(chat, "gen_ai.request.model", "gpt-4o");
      set(chat, "gen_ai.input.messages", content(messages(1500, c)));
      set(chat, "gen_ai.output.messages", content(messages(500, c)));
      set(chat, "system_instructions", content(R"([{"type":"text","content":"Be brief."}])"));
    }
    otlp::Span& tool = add(request, "execute_tool get_weather", t, 9, 5);
    set(tool, "gen_ai.operation.name", "execute_tool");
    set(tool, "gen_ai.tool.call.arguments", content(R"({"city":"Paris"})"));
    otlp::Span& root = add(request, "create_agent weather-agent", t, 0, -1);
    set(root, "gen_ai.operation.name", "create_agent");
  }
  return request.SerializeAsString();
}

template <class Work>
double per_second(double seconds, int spans_per_call, Work work) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(seconds);
  long calls = 0;
  const auto start = Clock::now();
  while (Clock::now() < deadline) {
    work();
    ++calls;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  return static_cast<double>(calls) * spans_per_call / elapsed;
}

void messages_against_wire(int spans, bench::Content content, const char* name, double seconds) {
  const normalize::Normalizer normalizer{config::NormalizeConfig{}};
  bench::TraceSource source(bench::Mix::koog, 0x5eed'0f'a9e47ULL, content);
  std::vector<std::string> pool;
  for (int i = 0; i < 16; ++i) pool.push_back(bench::encode_request(source, spans));
  std::string out;
  const auto rate = [&](auto step) {
    return bench::spans_per_cpu_second(pool, spans, seconds, "normalize_bench", 16, step);
  };
  const double message = rate([&](const std::string& body) {
    google::protobuf::Arena arena;
    auto* request = google::protobuf::Arena::CreateMessage<otlp::ExportRequest>(&arena);
    if (!otlp::decode_protobuf(body, *request).ok()) return false;
    normalize::NormalizeTally tally;
    for (auto& resource_spans : *request->mutable_resource_spans()) {
      normalize::apply(normalizer, resource_spans, tally);
    }
    out.clear();
    return request->SerializeToString(&out);
  });
  normalize::WireNormalizer wire;
  const double wired = rate([&](const std::string& body) {
    normalize::NormalizeTally tally;
    out.clear();
    return wire.normalize(normalizer, body, out, tally).outcome == policy::WireOutcome::rewritten;
  });
  std::printf("rules, %-26s message path %8.0f  wire path %8.0f spans/CPU-s (%.2fx)\n", name, message, wired,
              wired / message);
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const normalize::Normalizer normalizer{config::NormalizeConfig{}};
  normalize::PreviewCache cache{config::PreviewCacheConfig{}};
  const int spans = kTracesPerRequest * 10;

  for (bool masked : {false, true}) {
    const std::string payload = make_request(masked);
    otlp::ExportRequest decoded;
    const double decode = per_second(seconds, spans, [&] { decoded.ParseFromString(payload); });
    const double stage = per_second(seconds, spans, [&] {
      decoded.ParseFromString(payload);
      normalize::NormalizeTally tally;
      const auto now = Clock::now();
      for (auto& resource_spans : *decoded.mutable_resource_spans()) {
        normalize::apply(normalizer, resource_spans, tally);
        normalize::collect_previews(normalizer, "r0", resource_spans, cache, now);
      }
      for (auto& resource_spans : *decoded.mutable_resource_spans()) {
        normalize::fill_previews(normalizer, "r0", resource_spans, cache, now, tally);
      }
    });
    // The stage alone: decode plus stage, minus decode, per span.
    const double stage_only = 1.0 / (1.0 / stage - 1.0 / decode);
    std::printf("%-8s content, %zu-byte request of %d spans: decode %.0f spans/s, decode+normalize "
                "%.0f spans/s, normalize alone ~%.0f spans/s (%.2f us/span)\n",
                masked ? "masked" : "verbose", payload.size(), spans, decode, stage, stage_only,
                1e6 / stage_only);
  }
  std::printf("preview cache after the run: %zu entries, %zu bytes\n", cache.entries(), cache.bytes());
  messages_against_wire(50, bench::Content::short_text, "50 spans, short content", seconds);
  messages_against_wire(50, bench::Content::long_text, "50 spans, ~1.5 KB content", seconds);
  messages_against_wire(512, bench::Content::short_text, "512 spans, short content", seconds);
  messages_against_wire(512, bench::Content::long_text, "512 spans, ~1.5 KB content", seconds);
  return 0;
}
