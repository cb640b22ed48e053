// chat_summary against chat_preview: the preview cache ranks candidates by the first and converts
// the winner into the second's chat shape (encode_preview_text), so the two must never disagree
// on whether a text is GenAI messages and which roles it holds. And the encoders against the
// message-built values: their bytes must be what SerializeToString makes of the messages.
#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
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

namespace {

// The message path's preview of a text (what the preview cache built before it encoded directly).
std::optional<otlp::AnyValue> message_preview(const std::string& text, std::string_view role) {
  std::optional<otlp::AnyValue> parsed = normalize::chat_or_json_value(text);
  if (parsed && parsed->value_case() != otlp::AnyValue::kStringValue) return parsed;
  otlp::AnyValue out;
  auto* messages = out.mutable_kvlist_value()->add_values();
  messages->set_key("messages");
  auto* message = messages->mutable_value()->mutable_array_value()->add_values()->mutable_kvlist_value();
  auto* role_value = message->add_values();
  role_value->set_key("role");
  role_value->mutable_value()->set_string_value(std::string(role));
  auto* content = message->add_values();
  content->set_key("content");
  content->mutable_value()->set_string_value(parsed ? parsed->string_value() : text);
  return out;
}

void check_encoders(const std::string& text) {
  INFO("text: " << text);
  std::string encoded = "stale";
  const bool parsed = normalize::encode_json_value(text, encoded);
  CHECK((parsed ? "value " + encoded : "none") == serialized(normalize::parse_json_value(text)));
  if (!parsed) CHECK(encoded.empty());
  for (std::string_view role : {"user", "assistant"}) {
    encoded = "stale";
    normalize::encode_preview_text(text, role, encoded);
    CHECK("value " + encoded == serialized(message_preview(text, role)));
  }
}

// `text` without a UTF-8 sequence cut off at its end (the generators truncate texts anywhere; such
// a string is no JSON and is encoded all the same, but protobuf logs an error serializing it).
std::string whole_utf8(std::string text) {
  std::size_t start = text.size();
  while (start > 0 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
  if (start == 0 || static_cast<unsigned char>(text[start - 1]) < 0x80) return text;
  const unsigned char lead = static_cast<unsigned char>(text[start - 1]);
  const std::size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
  if (text.size() - (start - 1) < length) text.resize(start - 1);
  return text;
}

// Random JSON text, written by hand so it can hold what a boost::json::value cannot (duplicate
// keys, numbers at and past the integer limits, escapes) and nest past the parser's depth limit.
class JsonTextGenerator {
 public:
  explicit JsonTextGenerator(std::uint64_t seed) : random_(seed) {}

  std::string text() {
    std::string out;
    if (pick(10) == 0) out += " \n";
    value(out, pick(6) == 0 ? 40 : 6);
    switch (pick(20)) {
      case 0: return out.substr(0, static_cast<std::size_t>(pick(static_cast<int>(out.size()) + 1)));
      case 1: return out + " x";
      default: return out;
    }
  }

 private:
  int pick(int n) { return static_cast<int>(random_() % static_cast<std::uint64_t>(n)); }

  template <std::size_t N>
  const char* one_of(const char* const (&items)[N]) {
    return items[static_cast<std::size_t>(pick(static_cast<int>(N)))];
  }

  void scalar(std::string& out) {
    static const char* const kScalars[] = {
        "null", "true", "false", "0", "-0", "0.0", "-0.0", "1", "-1", "127", "128", "300", "1.5", "-2.25e10",
        "1e-320", "1e308", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "-9223372036854775809", "18446744073709551615", "18446744073709551616", "12345678901234567890123",
        "\"\"", "\"s\"", "\"\\u00e9t\\u00e9\"", "\"\\ud83d\\ude00\"", "\"line\\nbreak \\\"q\\\" \\\\\"",
        "\"\xc3\xa9\xe2\x82\xac\"", "\"\\u0000\""};
    if (pick(8) == 0) {
      out += '"' + std::string(static_cast<std::size_t>(pick(300)), 'w') + '"';  // lengths past one byte
      return;
    }
    out += one_of(kScalars);
  }

  void key(std::string& out) {
    static const char* const kKeys[] = {"\"a\"", "\"b\"", "\"\"", "\"role\"", "\"parts\"", "\"k\\u0065y\"",
                                        "\"\xc3\xbc\""};
    out += one_of(kKeys);  // few keys: duplicates are common
  }

  void value(std::string& out, int depth) {
    const int kind = depth == 0 ? 2 : pick(depth > 10 ? 2 : 5);
    if (kind >= 2) return scalar(out);
    const bool object = kind == 0;
    out += object ? '{' : '[';
    const int count = depth > 10 ? 1 : pick(5);
    for (int i = 0; i < count; ++i) {
      if (i > 0) out += ',';
      if (object) (key(out), out += ':');
      value(out, depth - 1);
    }
    out += object ? '}' : ']';
  }

  std::mt19937_64 random_;
};

}  // namespace

TEST_CASE("the JSON encoders write what the message path serializes, on edge cases", "[normalize][json]") {
  std::vector<std::string> texts{
      "", "   ", "not json", "[masked: 99 bytes]", "null", "nul", "true", "false", "0", "-0", "-0.0", "0.0",
      "1e400", "-1e400", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
      "18446744073709551615", "18446744073709551616", "\"\"", "\"s\"", "{}", "[]", "[[]]", "{\"\":{}}",
      "[null]", "{\"a\":null}", "[null,null,{}]", R"({"a":1,"a":2,"b":[true,false,"x"]})",
      R"({"\u00e9":"\ud83d\ude00","z":-1,"y":1.5})", R"("[{\"role\":\"user\"}]")",
      R"([{"role":"User","parts":[{"type":"text","content":"Hi"}]}])",
      R"([{"role":"USER","parts":[{"type":"text","content":""},{"type":"text","content":"x"}]}])",
      R"([{"role":"user","parts":[{"type":"text","content":"a"},{"type":"text","content":""},)"
      R"({"type":"text","content":"b"}]},{"role":"","parts":[{"type":"text","content":"c"}]}])",
      R"([{"role":"Assistant","parts":[{"type":"tool_call","content":"x"}]},{"role":"user","parts":[]}])",
      R"([{"role":"user","parts":[{"type":"blob"}]}])",
      R"([{"role":"user","parts":[{"type":"text","content":"a"}]},3])",
      R"([{"role":"system","role":"user","parts":[{"type":"text","content":"dup"}]}])",
      "[" + std::string(300, 'w') + "]", "\"" + std::string(200, 'w') + "\"", std::string(500, 'w'),
      std::string(31, '[') + std::string(31, ']'), std::string(32, '[') + std::string(32, ']'),
      std::string(33, '[') + std::string(33, ']'), std::string(64, '[') + std::string(64, ']'),
  };
  std::string nested = "1";
  for (int i = 0; i < 31; ++i) nested = (i % 2 == 0 ? "{\"k\":" : "[") + nested + (i % 2 == 0 ? "}" : "]");
  texts.push_back(nested);
  for (const std::string& text : texts) check_encoders(text);
}

TEST_CASE("the JSON encoders write what the message path serializes, on random JSON", "[normalize][json]") {
  JsonTextGenerator json(0x150'e4c0ULL);
  for (int i = 0; i < 3000; ++i) check_encoders(whole_utf8(json.text()));
  MessagesGenerator messages(0x0e4c'0de5ULL);
  for (int i = 0; i < 3000; ++i) check_encoders(whole_utf8(messages.text()));
}

TEST_CASE("the JSON encoders write a document larger than the parser's buffer", "[normalize][json]") {
  std::string text = "[";
  for (int i = 0; i < 20000; ++i) text += R"({"role":"tool","parts":[{"type":"text","content":"\n\"x\""}]},)";
  text += R"({"role":"Assistant","parts":[{"type":"text","content":"done"}]}])";
  check_encoders(text);
  check_encoders(text.substr(0, text.size() - 1));  // not JSON: one message of the whole text
}
