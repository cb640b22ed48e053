#include "normalize/json_value.hpp"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "common/hex.hpp"
#include "otlp/wire_schema.hpp"
#include "otlp/wire_writer.hpp"

namespace proxy::normalize {
namespace {

void from_json(const boost::json::value& json, otlp::AnyValue& out) {
  switch (json.kind()) {
    case boost::json::kind::null:
      out.Clear();
      break;
    case boost::json::kind::bool_:
      out.set_bool_value(json.get_bool());
      break;
    case boost::json::kind::int64:
      out.set_int_value(json.get_int64());
      break;
    case boost::json::kind::uint64:
      if (json.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        out.set_int_value(static_cast<std::int64_t>(json.get_uint64()));
      } else {
        out.set_double_value(static_cast<double>(json.get_uint64()));
      }
      break;
    case boost::json::kind::double_:
      out.set_double_value(json.get_double());
      break;
    case boost::json::kind::string:
      out.set_string_value(std::string(json.get_string()));
      break;
    case boost::json::kind::array: {
      auto* array = out.mutable_array_value();
      for (const boost::json::value& item : json.get_array()) from_json(item, *array->add_values());
      break;
    }
    case boost::json::kind::object: {
      auto* list = out.mutable_kvlist_value();
      for (const auto& [key, item] : json.get_object()) {
        otlp::KeyValue* entry = list->add_values();
        entry->set_key(std::string(key));
        from_json(item, *entry->mutable_value());
      }
      break;
    }
  }
}

// Whether `text` can be JSON at all, from its first character after whitespace: most content
// values are prose or the policy's markers, and refusing them here spares the parser's
// allocations (the wire path's normalization meets one or two per Koog span).
bool may_be_json(std::string_view text) {
  const std::size_t start = text.find_first_not_of(" \t\n\r");
  if (start == std::string_view::npos) return false;
  const std::string_view rest = text.substr(start);
  switch (rest.front()) {
    case '{': case '[': case '"': case '-': return true;
    case 't': return rest.starts_with("true");
    case 'f': return rest.starts_with("false");
    case 'n': return rest.starts_with("null");
    default: return rest.front() >= '0' && rest.front() <= '9';
  }
}

// `text` lower-cased into `out` (its capacity reused).
void assign_lower(std::string& out, std::string_view text) {
  out.assign(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

// The text of a GenAI message's text parts, in order (other parts: tool calls and results, blobs).
template <class OnText>
void each_text_part(const boost::json::array& parts, OnText&& on_text) {
  for (const boost::json::value& part : parts) {
    if (!part.is_object()) continue;
    const boost::json::value* type = part.get_object().if_contains("type");
    const boost::json::value* text = part.get_object().if_contains("content");
    if (type == nullptr || !type->is_string() || type->get_string() != "text" || text == nullptr ||
        !text->is_string()) {
      continue;
    }
    on_text(std::string_view(text->get_string()));
  }
}

bool has_text(const boost::json::array& parts) {
  bool any = false;
  each_text_part(parts, [&](std::string_view text) { any = any || !text.empty(); });
  return any;
}

// The one reading of OpenTelemetry GenAI messages, for chat_preview and chat_summary alike: a
// non-empty array of objects, each with a string "role" and an array "parts". Calls
// `on_message(role, parts)` for each message with text, in order; false when `json` is not such a
// list or no message has text.
template <class OnMessage>
bool read_genai_messages(const boost::json::value& json, OnMessage&& on_message) {
  if (!json.is_array() || json.get_array().empty()) return false;
  for (const boost::json::value& message : json.get_array()) {
    if (!message.is_object()) return false;
    const boost::json::value* role = message.get_object().if_contains("role");
    const boost::json::value* parts = message.get_object().if_contains("parts");
    if (role == nullptr || !role->is_string() || parts == nullptr || !parts->is_array()) return false;
  }
  bool any_text = false;
  for (const boost::json::value& message : json.get_array()) {
    const boost::json::array& parts = message.get_object().at("parts").get_array();
    if (!has_text(parts)) continue;  // tool calls and results: no text to preview
    any_text = true;
    on_message(std::string_view(message.get_object().at("role").get_string()), parts);
  }
  return any_text;
}

// Whether `text` lower-cased (as chat_preview writes roles) is `lowered`.
bool equals_lower(std::string_view text, std::string_view lowered) {
  return text.size() == lowered.size() &&
         std::equal(text.begin(), text.end(), lowered.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == static_cast<unsigned char>(b);
         });
}

// Whether the text may hold a "parts" key, which every GenAI message has: spelt out, or written
// with \u escapes (no other escape makes a letter). Most candidates are not GenAI messages
// (Koog's other values, masked text), and this spares parsing them.
bool may_name_parts(std::string_view text) {
  return text.find("parts") != std::string_view::npos || text.find("\\u") != std::string_view::npos;
}

// A thread's parser and buffer for JSON that is read and forgotten at once: a warm thread parses
// without allocating, unless a document outgrows the buffer's cap.
class ScratchJson {
 public:
  static ScratchJson& of_thread() {
    thread_local ScratchJson scratch;
    return scratch;
  }
  // A buffer for a document of `text_size` bytes (most documents' values take a few times their
  // text; past kMaxBuffer the resource asks the heap for more); nullptr while another document
  // holds it.
  unsigned char* take_buffer(std::size_t text_size, std::size_t& size) {
    if (in_use_) return nullptr;
    const std::size_t wanted = std::min(kMaxBuffer, 4 * text_size + 1024);
    if (wanted > size_) {
      buffer_ = std::make_unique<unsigned char[]>(wanted);
      size_ = wanted;
    }
    in_use_ = true;
    size = size_;
    return buffer_.get();
  }
  void give_back() { in_use_ = false; }
  // The JSON (as boost::json::parse reads it, same options) in `resource`; null when it is not JSON.
  boost::json::value parse(std::string_view text, boost::json::memory_resource* resource) {
    boost::system::error_code error;
    parser_.reset(boost::json::storage_ptr(resource));
    parser_.write(text, error);  // depth limited (32) by default
    boost::json::value json = error ? boost::json::value() : parser_.release();
    parser_.reset();  // forgets `resource`, which dies before the next parse
    return json;
  }

 private:
  static constexpr std::size_t kMaxBuffer = std::size_t{1} << 20;
  std::unique_ptr<unsigned char[]> buffer_;
  std::size_t size_ = 0;
  bool in_use_ = false;
  boost::json::parser parser_;
};

// A JSON text parsed into the thread's scratch (or the heap, when a document there is still
// alive), for as long as it lives.
class ScratchDocument {
 public:
  explicit ScratchDocument(std::string_view text) : scratch_(ScratchJson::of_thread()) {
    if (!may_be_json(text)) return;
    std::size_t size = 0;
    unsigned char* buffer = scratch_.take_buffer(text.size(), size);
    owns_buffer_ = buffer != nullptr;
    if (owns_buffer_) {
      resource_.emplace(buffer, size);
    } else {
      resource_.emplace();
    }
    // Constructed in place: move-assigning into a value of another storage would copy it out
    // of the scratch buffer onto the heap.
    json_.emplace(scratch_.parse(text, &*resource_));
    valid_ = !json_->is_null();
  }
  ~ScratchDocument() {
    json_.reset();  // before its resource
    resource_.reset();
    if (owns_buffer_) scratch_.give_back();
  }
  ScratchDocument(const ScratchDocument&) = delete;
  ScratchDocument& operator=(const ScratchDocument&) = delete;

  // nullptr: not JSON, or JSON null.
  const boost::json::value* json() const { return valid_ ? &*json_ : nullptr; }

 private:
  ScratchJson& scratch_;
  std::optional<boost::json::monotonic_resource> resource_;
  std::optional<boost::json::value> json_;
  bool owns_buffer_ = false;
  bool valid_ = false;
};

using otlp::wire::Writer;

// Field numbers of common.proto's ArrayValue, KeyValueList and KeyValue (AnyValue's are
// otlp::wire::ValueCase).
using enum otlp::wire::ValueCase;
constexpr std::uint32_t kValues = 1;  // ArrayValue.values, KeyValueList.values
constexpr std::uint32_t kKey = 1;
constexpr std::uint32_t kValue = 2;

// A length-delimited field whose contents `plan_contents` plans.
template <class PlanContents>
void plan_field(Writer& writer, std::uint32_t number, PlanContents&& plan_contents) {
  const Writer::Mark mark = writer.mark();
  writer.open(number);
  plan_contents();
  writer.close(mark);
}

// A string field; `text` must outlive the writer's write().
void plan_string(Writer& writer, std::uint32_t number, std::string_view text) {
  plan_field(writer, number, [&] { writer.copy(text); });
}

// A KeyValue of a kvlist, its value planned by `plan_value` (proto3: an empty key is not written).
template <class PlanValue>
void plan_entry(Writer& writer, std::string_view key, PlanValue&& plan_value) {
  plan_field(writer, kValues, [&] {
    if (!key.empty()) plan_string(writer, kKey, key);
    plan_field(writer, kValue, plan_value);
  });
}

void plan_json(Writer& writer, const boost::json::value& json);

void plan_array(Writer& writer, const boost::json::array& array) {
  plan_field(writer, kArray, [&] {
    for (const boost::json::value& item : array) plan_field(writer, kValues, [&] { plan_json(writer, item); });
  });
}

void plan_object(Writer& writer, const boost::json::object& object) {
  plan_field(writer, kKvlist, [&] {
    // A named entry, not a structured binding: clang 14 (the fuzz build) cannot capture those.
    for (const boost::json::key_value_pair& entry : object) {
      plan_entry(writer, entry.key(), [&] { plan_json(writer, entry.value()); });
    }
  });
}

// from_json's AnyValue, planned as SerializeToString encodes it: fields in number order, a oneof
// member written even when zero or empty (it has presence). Strings are copied from the document,
// which must outlive the writer's write().
void plan_json(Writer& writer, const boost::json::value& json) {
  switch (json.kind()) {
    case boost::json::kind::null:
      break;
    case boost::json::kind::bool_:
      writer.varint_field(kBool, json.get_bool() ? 1 : 0);
      break;
    case boost::json::kind::int64:
      writer.varint_field(kInt, static_cast<std::uint64_t>(json.get_int64()));
      break;
    case boost::json::kind::uint64:
      if (json.get_uint64() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        writer.varint_field(kInt, json.get_uint64());
      } else {
        writer.fixed64_field(kDouble, std::bit_cast<std::uint64_t>(static_cast<double>(json.get_uint64())));
      }
      break;
    case boost::json::kind::double_:
      writer.fixed64_field(kDouble, std::bit_cast<std::uint64_t>(json.get_double()));
      break;
    case boost::json::kind::string:
      plan_string(writer, kString, json.get_string());
      break;
    case boost::json::kind::array:
      plan_array(writer, json.get_array());
      break;
    case boost::json::kind::object:
      plan_object(writer, json.get_object());
      break;
  }
}

// One message of the chat shape: {"role":role,"content":...}, its content's string planned by
// `plan_content`. The role is copied into the writer: it may be a scratch buffer.
template <class PlanContent>
void plan_chat_message(Writer& writer, std::string_view role, PlanContent&& plan_content) {
  plan_field(writer, kValues, [&] {
    plan_field(writer, kKvlist, [&] {
      plan_entry(writer, "role", [&] { writer.bytes_field(kString, role); });
      plan_entry(writer, "content", [&] { plan_field(writer, kString, plan_content); });
    });
  });
}

// The chat shape {"messages":[...]} around the messages `plan_messages` plans; false (nothing
// planned) when it returns false.
template <class PlanMessages>
bool plan_chat(Writer& writer, PlanMessages&& plan_messages) {
  const Writer::Mark start = writer.mark();
  bool planned = false;
  plan_field(writer, kKvlist, [&] {
    plan_entry(writer, "messages", [&] { plan_field(writer, kArray, [&] { planned = plan_messages(); }); });
  });
  if (!planned) writer.rewind(start);
  return planned;
}

// A message's text parts joined by newlines, as chat_of joins them.
void plan_joined_text(Writer& writer, const boost::json::array& parts) {
  static constexpr std::string_view kNewline = "\n";
  bool any = false;
  each_text_part(parts, [&](std::string_view text) {
    if (any) writer.copy(kNewline);
    writer.copy(text);
    any = any || !text.empty();
  });
}

// chat_of's chat shape for GenAI messages; false (nothing planned) when they are not.
bool plan_genai_chat(Writer& writer, const boost::json::value& json, std::string& role_buffer) {
  return plan_chat(writer, [&] {
    return read_genai_messages(json, [&](std::string_view role, const boost::json::array& parts) {
      assign_lower(role_buffer, role);
      plan_chat_message(writer, role_buffer, [&] { plan_joined_text(writer, parts); });
    });
  });
}

// A thread's writer and role buffer for the encoders: warm, they plan without allocating.
struct ThreadEncoder {
  Writer writer;
  std::string role;
  static ThreadEncoder& get() {
    thread_local ThreadEncoder encoder;
    encoder.writer.clear();
    return encoder;
  }
  // Writes the plan into `out`. A huge document's plan is freed rather than kept for the
  // thread's life (as ScratchJson caps its buffer).
  void write(std::string& out) {
    writer.write(out);
    if (writer.planned_size() > kMaxKept) writer = Writer();
  }
  static constexpr std::size_t kMaxKept = std::size_t{1} << 20;
};

}  // namespace

std::optional<otlp::AnyValue> parse_json_value(std::string_view text) {
  const ScratchDocument document(text);
  const boost::json::value* json = document.json();
  if (json == nullptr) return std::nullopt;
  otlp::AnyValue value;
  from_json(*json, value);
  return value;
}

boost::json::value to_json(const otlp::AnyValue& value) {
  switch (value.value_case()) {
    case otlp::AnyValue::kStringValue:
      return boost::json::string(value.string_value());
    case otlp::AnyValue::kBoolValue:
      return value.bool_value();
    case otlp::AnyValue::kIntValue:
      return value.int_value();
    case otlp::AnyValue::kDoubleValue:
      return value.double_value();
    case otlp::AnyValue::kBytesValue:
      return boost::json::string(to_hex(value.bytes_value()));
    case otlp::AnyValue::kArrayValue: {
      boost::json::array array;
      for (const otlp::AnyValue& item : value.array_value().values()) array.push_back(to_json(item));
      return array;
    }
    case otlp::AnyValue::kKvlistValue: {
      boost::json::object object;
      for (const otlp::KeyValue& item : value.kvlist_value().values()) {
        object[item.key()] = to_json(item.value());
      }
      return object;
    }
    default:
      return nullptr;
  }
}

namespace {

// GenAI messages (read by read_genai_messages) in the chat shape; nullopt when they are not.
std::optional<otlp::AnyValue> chat_of(const boost::json::value& json) {
  std::optional<otlp::AnyValue> out;  // built at the first message: most texts are not messages
  opentelemetry::proto::common::v1::ArrayValue* list = nullptr;
  const bool chat = read_genai_messages(json, [&](std::string_view role, const boost::json::array& parts) {
    if (!out) {
      auto* messages = out.emplace().mutable_kvlist_value()->add_values();
      messages->set_key("messages");
      list = messages->mutable_value()->mutable_array_value();
    }
    std::string content;
    each_text_part(parts, [&](std::string_view text) {
      if (!content.empty()) content += "\n";
      content += text;
    });
    auto* entry = list->add_values()->mutable_kvlist_value();
    auto* role_value = entry->add_values();
    role_value->set_key("role");
    assign_lower(*role_value->mutable_value()->mutable_string_value(), role);
    auto* content_value = entry->add_values();
    content_value->set_key("content");
    content_value->mutable_value()->set_string_value(std::move(content));
  });
  if (!chat) return std::nullopt;
  return out;
}

}  // namespace

std::optional<otlp::AnyValue> chat_preview(std::string_view genai_messages) {
  const ScratchDocument document(genai_messages);
  if (document.json() == nullptr) return std::nullopt;
  return chat_of(*document.json());
}

std::optional<otlp::AnyValue> chat_or_json_value(std::string_view text) {
  const ScratchDocument document(text);
  if (document.json() == nullptr) return std::nullopt;
  if (auto chat = chat_of(*document.json())) return chat;
  otlp::AnyValue value;
  from_json(*document.json(), value);
  return value;
}

bool encode_json_value(std::string_view text, std::string& out) {
  out.clear();
  const ScratchDocument document(text);
  if (document.json() == nullptr) return false;
  ThreadEncoder& encoder = ThreadEncoder::get();
  plan_json(encoder.writer, *document.json());
  encoder.write(out);
  return true;
}

void encode_preview_text(std::string_view text, std::string_view role, std::string& out) {
  out.clear();
  ThreadEncoder& encoder = ThreadEncoder::get();
  Writer& writer = encoder.writer;
  const ScratchDocument document(text);
  const boost::json::value* json = document.json();
  if (json == nullptr || json->is_string()) {
    const std::string_view content = json == nullptr ? text : std::string_view(json->get_string());
    plan_chat(writer, [&] {
      plan_chat_message(writer, role, [&] { writer.copy(content); });
      return true;
    });
  } else if (!plan_genai_chat(writer, *json, encoder.role)) {
    plan_json(writer, *json);
  }
  encoder.write(out);
}

ChatSummary chat_summary(std::string_view genai_messages, std::string_view role) {
  ChatSummary summary;
  if (!may_name_parts(genai_messages)) return summary;
  const ScratchDocument document(genai_messages);
  if (document.json() == nullptr) return summary;
  summary.chat = read_genai_messages(*document.json(), [&](std::string_view message_role, const boost::json::array&) {
    summary.has_role = summary.has_role || equals_lower(message_role, role);
  });
  summary.has_role = summary.chat && summary.has_role;
  return summary;
}

}  // namespace proxy::normalize
