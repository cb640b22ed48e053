// chat_summary against chat_preview: the preview cache ranks candidates by the first and converts
// the winner with the second (chat_or_json_value), so the two must never disagree on whether a
// text is GenAI messages and which roles it holds.
#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "normalize/json_value.hpp"

using namespace proxy;

namespace {

// Whether chat_preview's result has a message of `role` (read from the value it built).
bool has_role(const otlp::AnyValue& chat, std::string_view role) {
  for (const otlp::KeyValue& messages : chat.kvlist_value().values()) {
    for (const otlp::AnyValue& message : messages.value().array_value().values()) {
      for (const otlp::KeyValue& field : message.kvlist_value().values()) {
        if (field.key() == "role" && field.value().string_value() == role) return true;
      }
    }
  }
  return false;
}

std::string serialized(const std::optional<otlp::AnyValue>& value) {
  return value ? "value " + value->SerializeAsString() : "none";
}

void check_agree(const std::string& text) {
  const auto preview = normalize::chat_preview(text);
  INFO("text: " << text);
  CHECK(serialized(normalize::chat_or_json_value(text)) ==
        serialized(preview ? preview : normalize::parse_json_value(text)));
  for (std::string_view role : {"user", "assistant", "system"}) {
    INFO("text: " << text << "\nrole: " << role);
    const normalize::ChatSummary summary = normalize::chat_summary(text, role);
    CHECK(summary.chat == preview.has_value());
    CHECK(summary.has_role == (preview.has_value() && has_role(*preview, role)));
  }
}

// Random GenAI-message-like JSON: mostly well formed, with every way chat_preview refuses a
// message or skips a part mixed in.
class MessagesGenerator {
 public:
  explicit MessagesGenerator(std::uint64_t seed) : random_(seed) {}

  boost::json::value messages() {
    boost::json::array list;
    const int count = pick(5);
    for (int i = 0; i < count; ++i) list.push_back(pick(20) == 0 ? odd_value() : message());
    return list;
  }

  std::string text() {
    std::string json = boost::json::serialize(messages());
    switch (pick(8)) {
      case 0: return boost::json::serialize(boost::json::value(json));  // a JSON string holding it
      case 1: return json.substr(0, static_cast<std::size_t>(pick(static_cast<int>(json.size()) + 1)));
      case 2: return " \n\t" + json;
      case 3: return "x" + json;
      default: return json;
    }
  }

 private:
  int pick(int n) { return static_cast<int>(random_() % static_cast<std::uint64_t>(n)); }

  boost::json::value odd_value() {
    switch (pick(5)) {
      case 0: return nullptr;
      case 1: return "a string";
      case 2: return 42;
      case 3: return boost::json::array{1, 2};
      default: return boost::json::object{};
    }
  }

  boost::json::value role() {
    static const std::vector<std::string> kRoles{"user", "User", "USER", "uSeR", "assistant", "Assistant",
                                                 "ASSISTANT", "system", "tool", "", "users", "use", "\u00dcser"};
    if (pick(15) == 0) return odd_value();
    return boost::json::value(kRoles[static_cast<std::size_t>(pick(static_cast<int>(kRoles.size())))]);
  }

  boost::json::value content() {
    static const std::vector<std::string> kTexts{"", "Hi", "line\nbreak \"quoted\" \\ back", "\u00e9t\u00e9",
                                                 "[masked]", std::string(300, 'w')};
    if (pick(10) == 0) return odd_value();
    return boost::json::value(kTexts[static_cast<std::size_t>(pick(static_cast<int>(kTexts.size())))]);
  }

  boost::json::value part() {
    if (pick(12) == 0) return odd_value();
    boost::json::object part;
    switch (pick(6)) {
      case 0: part["type"] = "tool_call"; break;
      case 1: part["type"] = pick(2) == 0 ? boost::json::value("Text") : odd_value(); break;
      case 2: break;  // no type
      default: part["type"] = "text"; break;
    }
    if (pick(8) != 0) part["content"] = content();
    return part;
  }

  boost::json::value message() {
    boost::json::object message;
    if (pick(12) != 0) message["role"] = role();
    if (pick(12) != 0) {
      if (pick(15) == 0) {
        message["parts"] = odd_value();
      } else {
        boost::json::array parts;
        const int count = pick(4);
        for (int i = 0; i < count; ++i) parts.push_back(part());
        message["parts"] = std::move(parts);
      }
    }
    if (pick(4) == 0) message["name"] = "extra";
    return message;
  }

  std::mt19937_64 random_;
};

}  // namespace

TEST_CASE("chat_summary agrees with chat_preview on edge cases", "[normalize][json]") {
  const std::vector<std::string> texts{
      "",
      "   ",
      "not json",
      "[masked: 99 bytes]",
      "[]",
      "{}",
      "null",
      "\"[{\\\"role\\\":\\\"user\\\",\\\"parts\\\":[{\\\"type\\\":\\\"text\\\",\\\"content\\\":\\\"hi\\\"}]}]\"",
      R"([{"role":"User","parts":[{"type":"text","content":"Hi"}]}])",
      R"([{"role":"USER","parts":[{"type":"text","content":""}]}])",
      R"([{"role":"User","parts":[{"type":"text","content":""},{"type":"text","content":"x"}]}])",
      R"([{"role":"Assistant","parts":[{"type":"tool_call","content":"x"}]},{"role":"user","parts":[]}])",
      R"([{"role":"user","parts":[{"type":"blob"}]}])",
      R"([{"content":"no role"}])",
      R"([{"role":"user","parts":[{"type":"text","content":"a"}]},3])",
      R"([{"role":"user","parts":[{"type":"text","content":"a"}]},{"role":"assistant"}])",
      R"([{"role":7,"parts":[{"type":"text","content":"a"}]}])",
      R"([{"role":"user","parts":{"type":"text","content":"a"}}])",
      R"([{"role":"user","parts":[{"type":"text","content":7}]}])",
      R"([{"role":"user","parts":[{"type":"text","content":"a\n\"b\"\\u00e9"}]}])",
      R"([{"role":"system","role":"user","parts":[{"type":"text","content":"dup"}]}])",
      R"([{"r\u006fle":"\u0055ser","p\u0061rts":[{"type":"text","content":"escaped key"}]}])",
      R"([{"role":"user","content":"no parts"}])",
      R"([{"role":"user","parts":[{"type":"text","content":"a"}]}] trailing)",
      R"([{"role":"user","parts":[{"type":"text","content":"a"}]})",
      std::string(40, '[') + std::string(40, ']'),
  };
  for (const std::string& text : texts) check_agree(text);
}

TEST_CASE("chat_summary agrees with chat_preview on random messages", "[normalize][json]") {
  MessagesGenerator generator(0x5eed'c4a7ULL);
  for (int i = 0; i < 3000; ++i) check_agree(generator.text());
}

TEST_CASE("chat_summary reads a document larger than its buffer", "[normalize][json]") {
  std::string text = "[";
  for (int i = 0; i < 20000; ++i) text += R"({"role":"tool","parts":[{"type":"text","content":"\n\"x\""}]},)";
  text += R"({"role":"Assistant","parts":[{"type":"text","content":"done"}]}])";
  check_agree(text);
  CHECK(normalize::chat_summary(text, "assistant").has_role);
}
