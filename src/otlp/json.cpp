// OTLP-JSON codec. Boost.JSON tokenizes and builds a DOM; the walk below maps it onto the
// generated messages with OTLP's rules, so errors can name the exact JSON path.
#include "otlp/json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include "common/hex.hpp"

namespace proxy::otlp {
namespace {

namespace json = boost::json;
namespace pb = google::protobuf;

using Resource = opentelemetry::proto::resource::v1::Resource;
using EntityRef = opentelemetry::proto::common::v1::EntityRef;
using Scope = opentelemetry::proto::common::v1::InstrumentationScope;
using ArrayValue = opentelemetry::proto::common::v1::ArrayValue;
using KeyValueList = opentelemetry::proto::common::v1::KeyValueList;
using SpanEvent = Span::Event;
using SpanLink = Span::Link;
using SpanStatus = opentelemetry::proto::trace::v1::Status;
using KeyValues = pb::RepeatedPtrField<KeyValue>;

constexpr int kMaxAnyValueDepth = 64;
// One AnyValue nesting costs up to four JSON levels ({"kvlistValue":{"values":[{"value":...);
// the margin covers the envelope, so the walk's path-naming depth error fires first.
constexpr std::size_t kMaxJsonDepth = 4 * kMaxAnyValueDepth + 64;
constexpr std::size_t kMaxEchoedBytes = 64;  // of a bad value quoted back in an error message
constexpr std::size_t kParserTempBytes = 4096;
constexpr std::string_view kBase64IdHint = " (OTLP-JSON encodes ids as hex, not base64)";
constexpr std::size_t kTraceIdBytes = 16;
constexpr std::size_t kSpanIdBytes = 8;

std::string_view view(json::string_view s) { return {s.data(), s.size()}; }

// ---------------------------------------------------------------------------------------------
// Byte codecs

constexpr char kBase64Alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_hex_table() {
  std::array<std::int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 10; ++i) {
    table[static_cast<std::size_t>('0' + i)] = static_cast<std::int8_t>(i);
  }
  for (int i = 0; i < 6; ++i) {
    table[static_cast<std::size_t>('a' + i)] = static_cast<std::int8_t>(10 + i);
    table[static_cast<std::size_t>('A' + i)] = static_cast<std::int8_t>(10 + i);
  }
  return table;
}

// Standard and URL-safe alphabets both decode, as protobuf's JSON mapping allows.
constexpr std::array<std::int8_t, 256> make_base64_table() {
  std::array<std::int8_t, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i) {
    table[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<std::int8_t>(i);
  }
  table[static_cast<std::size_t>('-')] = 62;
  table[static_cast<std::size_t>('_')] = 63;
  return table;
}

constexpr std::array<std::int8_t, 256> kHexTable = make_hex_table();
constexpr std::array<std::int8_t, 256> kBase64Table = make_base64_table();

int hex_value(char c) { return kHexTable[static_cast<unsigned char>(c)]; }
int base64_value(char c) { return kBase64Table[static_cast<unsigned char>(c)]; }

// `out` has room for text.size() / 2 bytes.
bool hex_decode(std::string_view text, char* out) {
  for (std::size_t i = 0; i + 1 < text.size(); i += 2) {
    const int high = hex_value(text[i]);
    const int low = hex_value(text[i + 1]);
    if (high < 0 || low < 0) return false;
    out[i / 2] = static_cast<char>((high << 4) | low);
  }
  return true;
}

std::size_t base64_encoded_size(std::size_t bytes) { return 4 * ((bytes + 2) / 3); }

// `out` has room for base64_encoded_size(bytes.size()) characters; padding is written.
void base64_encode(std::string_view bytes, char* out) {
  const auto* in = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t left = bytes.size();
  for (; left >= 3; left -= 3, in += 3) {
    const std::uint32_t group = (std::uint32_t{in[0]} << 16) | (std::uint32_t{in[1]} << 8) | in[2];
    *out++ = kBase64Alphabet[(group >> 18) & 0x3f];
    *out++ = kBase64Alphabet[(group >> 12) & 0x3f];
    *out++ = kBase64Alphabet[(group >> 6) & 0x3f];
    *out++ = kBase64Alphabet[group & 0x3f];
  }
  if (left > 0) {
    const std::uint32_t second = left == 2 ? std::uint32_t{in[1]} << 8 : 0;
    const std::uint32_t group = (std::uint32_t{in[0]} << 16) | second;
    *out++ = kBase64Alphabet[(group >> 18) & 0x3f];
    *out++ = kBase64Alphabet[(group >> 12) & 0x3f];
    *out++ = left == 2 ? kBase64Alphabet[(group >> 6) & 0x3f] : '=';
    *out++ = '=';
  }
}

// Padding is optional (protobuf's JSON mapping accepts both); when present it must be complete.
bool base64_decode(std::string_view text, std::string& out) {
  std::size_t size = text.size();
  if (size > 0 && text[size - 1] == '=') {
    if (size % 4 != 0) return false;
    --size;
    if (text[size - 1] == '=') --size;
  }
  if (size % 4 == 1) return false;
  out.resize(size / 4 * 3 + (size % 4 == 0 ? 0 : size % 4 - 1));
  char* dst = out.data();
  std::uint32_t group = 0;
  int bits = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const int value = base64_value(text[i]);
    if (value < 0) return false;
    group = (group << 6) | static_cast<std::uint32_t>(value);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      *dst++ = static_cast<char>((group >> bits) & 0xff);
    }
  }
  return true;
}

bool looks_like_base64(std::string_view text, std::size_t bytes) {
  if (text.find_first_of("=+/") != std::string_view::npos) return true;
  const std::size_t padded = base64_encoded_size(bytes);
  const std::size_t unpadded = (bytes * 4 + 2) / 3;
  if (text.size() != padded && text.size() != unpadded) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return base64_value(c) >= 0; });
}

// ---------------------------------------------------------------------------------------------
// Parsing into a DOM

// Builds the same DOM as boost::json::parser, except that decimals go through std::from_chars:
// Boost 1.81's own conversion is an ulp off for roughly one value in ten, which would break
// doubleValue round trips.
class DomBuilder {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  DomBuilder(json::storage_ptr result, unsigned char* temp, std::size_t temp_size)
      : stack_(json::storage_ptr(), temp, temp_size) {
    stack_.reset(std::move(result));
  }

  json::value release() { return stack_.release(); }

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    stack_.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    stack_.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    stack_.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number_prefix_.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    number_prefix_.clear();
    stack_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    number_prefix_.clear();
    stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, json::error_code&) {
    std::string_view text = view(s);
    if (!number_prefix_.empty()) {
      number_prefix_.append(text);
      text = number_prefix_;
    }
    double precise = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), precise);
    if (ec == std::errc() && end == text.data() + text.size()) d = precise;
    number_prefix_.clear();
    stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    stack_.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    stack_.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  json::value_stack stack_;
  std::string number_prefix_;  // only used when a number straddles two write_some calls
};

// On failure returns null and sets `error`. The DOM lives in `storage`.
json::value parse_body(std::string_view body, json::storage_ptr storage, DecodeResult& error) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  unsigned char temp[kParserTempBytes];
  json::basic_parser<DomBuilder> parser(options, std::move(storage), temp, sizeof temp);
  json::error_code ec;
  std::size_t consumed = 0;
  try {
    consumed = parser.write_some(false, body.data(), body.size(), ec);
  } catch (const std::length_error& e) {  // a string or container beyond Boost.JSON's limits
    error = DecodeResult::failure(DecodeError::invalid_json, std::string("invalid JSON: ") + e.what());
    return nullptr;
  }
  if (!ec && consumed < body.size()) ec = json::error::extra_data;
  if (ec) {
    error = DecodeResult::failure(DecodeError::invalid_json, "invalid JSON at byte " +
                                                                 std::to_string(consumed) + ": " +
                                                                 ec.message());
    return nullptr;
  }
  return parser.handler().release();
}

// ---------------------------------------------------------------------------------------------
// Error messages

// A JSON path as a chain of stack frames: free to build while walking, rendered only on failure.
struct PathNode {
  const PathNode* parent = nullptr;  // null for the document root
  std::string_view key;              // empty for an array element
  std::size_t index = 0;
};

PathNode child(const PathNode& parent, std::string_view key) { return {&parent, key, 0}; }
PathNode element(const PathNode& parent, std::size_t index) { return {&parent, {}, index}; }

std::string render_path(const PathNode& node) {
  std::vector<const PathNode*> chain;
  for (const PathNode* n = &node; n->parent != nullptr; n = n->parent) chain.push_back(n);
  if (chain.empty()) return "request body";
  std::string out;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const PathNode& n = **it;
    if (n.key.empty()) {
      out += '[';
      out += std::to_string(n.index);
      out += ']';
    } else {
      if (!out.empty()) out += '.';
      out += n.key;
    }
  }
  return out;
}

// Echoes at most kMaxEchoedBytes, cut on a UTF-8 boundary: messages reach logs and clients.
void append_quoted(std::string& out, std::string_view text) {
  std::size_t size = text.size();
  const bool cut = size > kMaxEchoedBytes;
  if (cut) {
    size = kMaxEchoedBytes;
    while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xc0) == 0x80) --size;
  }
  out += '"';
  for (const char c : text.substr(0, size)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += '\\';
    out += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  out += '"';
  if (cut) out += "...";
}

std::string format_double(double d) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, d);
  return {buffer, result.ptr};
}

std::string describe(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case json::kind::int64:
      return std::to_string(v.get_int64());
    case json::kind::uint64:
      return std::to_string(v.get_uint64());
    case json::kind::double_:
      return format_double(v.get_double());
    case json::kind::string: {
      std::string out;
      append_quoted(out, view(v.get_string()));
      return out;
    }
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

template <typename T>
constexpr std::string_view integer_type_name() {
  if constexpr (std::is_same_v<T, std::int64_t>) {
    return "int64";
  } else if constexpr (std::is_same_v<T, std::uint64_t>) {
    return "uint64";
  } else if constexpr (std::is_same_v<T, std::int32_t>) {
    return "int32";
  } else {
    static_assert(std::is_same_v<T, std::uint32_t>);
    return "uint32";
  }
}

// 2^digits: the first value above T's range, exact in a double.
template <typename T>
constexpr double integer_upper_bound() {
  return static_cast<double>(std::numeric_limits<T>::max() / 2 + 1) * 2.0;
}

// ---------------------------------------------------------------------------------------------
// Walking the DOM into the messages

struct FieldName {
  std::string_view camel;
  std::string_view snake;  // the .proto name, which protobuf's JSON mapping also accepts
};

template <std::size_t N>
int find_field(std::string_view key, const std::array<FieldName, N>& names) {
  for (std::size_t i = 0; i < N; ++i) {
    if (key == names[i].camel || key == names[i].snake) return static_cast<int>(i);
  }
  return -1;
}

class RequestDecoder {
 public:
  bool decode(const json::value& root, ExportRequest& out) {
    static constexpr std::array<FieldName, 1> kFields{{{"resourceSpans", "resource_spans"}}};
    const PathNode at;
    if (!root.is_object()) return fail(at, "expected a JSON object, got " + describe(root));
    return fields(root, at, kFields, [&](int, const json::value& v, const PathNode& field_at) {
      return repeated(v, field_at, *out.mutable_resource_spans(), &RequestDecoder::resource_spans);
    });
  }

  std::string take_error() { return std::move(error_); }

 private:
  bool fail(const PathNode& at, std::string_view what) {
    error_ = render_path(at);
    error_ += ": ";
    error_ += what;
    return false;
  }

  bool fail_type(const PathNode& at, std::string_view expected, const json::value& got) {
    std::string what = "expected ";
    what += expected;
    what += ", got ";
    what += describe(got);
    return fail(at, what);
  }

  // Calls on_field(index, value, path) for each known key; null values are skipped because
  // protobuf's JSON mapping reads null as "not set", and unknown keys because OTLP requires it.
  template <std::size_t N, typename OnField>
  bool fields(const json::value& v, const PathNode& at, const std::array<FieldName, N>& names,
              OnField&& on_field) {
    static_assert(N <= 32, "the seen mask has 32 bits");
    const json::object* object = v.if_object();
    if (object == nullptr) return fail_type(at, "an object", v);
    std::uint32_t seen = 0;
    for (const json::key_value_pair& entry : *object) {
      const std::string_view key = view(entry.key());
      const int field = find_field(key, names);
      if (field < 0) continue;
      const PathNode field_at = child(at, key);
      const std::uint32_t bit = std::uint32_t{1} << field;
      // The DOM keeps one of two equal keys, so a repeat is the other spelling of the field.
      if ((seen & bit) != 0) {
        const FieldName& name = names[static_cast<std::size_t>(field)];
        std::string what = "given twice, as ";
        append_quoted(what, name.camel);
        what += " and ";
        append_quoted(what, name.snake);
        return fail(field_at, what);
      }
      seen |= bit;
      if (entry.value().is_null()) continue;
      if (!on_field(field, entry.value(), field_at)) return false;
    }
    return true;
  }

  template <typename Message, typename DecodeOne>
  bool repeated(const json::value& v, const PathNode& at, pb::RepeatedPtrField<Message>& out,
                DecodeOne&& decode_one) {
    const json::array* items = v.if_array();
    if (items == nullptr) return fail_type(at, "an array", v);
    if (items->size() <= static_cast<std::size_t>(INT_MAX - out.size())) {
      out.Reserve(out.size() + static_cast<int>(items->size()));
    }
    for (std::size_t i = 0; i < items->size(); ++i) {
      if (!decode_one((*items)[i], element(at, i), *out.Add())) return false;
    }
    return true;
  }

  template <typename Message>
  bool repeated(const json::value& v, const PathNode& at, pb::RepeatedPtrField<Message>& out,
                bool (RequestDecoder::*decode_one)(const json::value&, const PathNode&, Message&)) {
    return repeated(v, at, out,
                    [&](const json::value& item, const PathNode& item_at, Message& message) {
                      return (this->*decode_one)(item, item_at, message);
                    });
  }

  // The integer type comes from the generated setter, so range checks match the field.
  template <typename T, typename Message>
  bool read_integer_into(const json::value& v, const PathNode& at, Message& out,
                         void (Message::*set)(T)) {
    T value{};
    if (!read_integer(v, at, value)) return false;
    (out.*set)(value);
    return true;
  }

  bool read_string(const json::value& v, const PathNode& at, std::string& out) {
    const json::string* s = v.if_string();
    if (s == nullptr) return fail_type(at, "a string", v);
    out.assign(s->data(), s->size());
    return true;
  }

  bool read_strings(const json::value& v, const PathNode& at,
                    pb::RepeatedPtrField<std::string>& out) {
    const json::array* items = v.if_array();
    if (items == nullptr) return fail_type(at, "an array", v);
    out.Reserve(static_cast<int>(std::min<std::size_t>(items->size(), INT_MAX)));
    for (std::size_t i = 0; i < items->size(); ++i) {
      if (!read_string((*items)[i], element(at, i), *out.Add())) return false;
    }
    return true;
  }

  bool read_bool(const json::value& v, const PathNode& at, bool& out) {
    if (!v.is_bool()) return fail_type(at, "a boolean", v);
    out = v.get_bool();
    return true;
  }

  // Protobuf's JSON mapping takes integers as numbers or decimal strings (64-bit ones are
  // usually strings, since JavaScript numbers cannot hold them).
  template <typename T>
  bool read_integer(const json::value& v, const PathNode& at, T& out) {
    switch (v.kind()) {
      case json::kind::int64: {
        const std::int64_t i = v.get_int64();
        if (std::is_unsigned_v<T> && i < 0) return fail_negative(at, v);
        if (!std::in_range<T>(i)) return fail_range<T>(at, v);
        out = static_cast<T>(i);
        return true;
      }
      case json::kind::uint64: {
        const std::uint64_t u = v.get_uint64();
        if (!std::in_range<T>(u)) return fail_range<T>(at, v);
        out = static_cast<T>(u);
        return true;
      }
      case json::kind::double_: {
        const double d = v.get_double();
        if (!std::isfinite(d) || d != std::trunc(d)) return fail_type(at, "an integer", v);
        if (std::is_unsigned_v<T> && d < 0) return fail_negative(at, v);
        const auto lowest = static_cast<double>(std::numeric_limits<T>::min());
        if (d < lowest || d >= integer_upper_bound<T>()) return fail_range<T>(at, v);
        out = static_cast<T>(d);
        return true;
      }
      case json::kind::string:
        return parse_decimal(v, at, out);
      default:
        return fail_type(at, "an integer (number or decimal string)", v);
    }
  }

  template <typename T>
  bool parse_decimal(const json::value& v, const PathNode& at, T& out) {
    const std::string_view text = view(v.get_string());
    const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    if (std::is_unsigned_v<T> && text.size() > 1 && text.front() == '-' &&
        std::all_of(text.begin() + 1, text.end(), is_digit)) {
      if (text.find_first_not_of('0', 1) != std::string_view::npos) return fail_negative(at, v);
      out = 0;  // "-0"
      return true;
    }
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) return fail_range<T>(at, v);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return fail_type(at, "an integer (number or decimal string)", v);
    }
    out = value;
    return true;
  }

  bool fail_negative(const PathNode& at, const json::value& v) {
    return fail_type(at, "a non-negative integer", v);
  }

  template <typename T>
  bool fail_range(const PathNode& at, const json::value& v) {
    std::string what = "out of range for ";
    what += integer_type_name<T>();
    what += ", got ";
    what += describe(v);
    return fail(at, what);
  }

  bool read_double(const json::value& v, const PathNode& at, double& out) {
    switch (v.kind()) {
      case json::kind::int64:
        out = static_cast<double>(v.get_int64());
        return true;
      case json::kind::uint64:
        out = static_cast<double>(v.get_uint64());
        return true;
      case json::kind::double_:
        out = v.get_double();
        return true;
      case json::kind::string: {
        const std::string_view text = view(v.get_string());
        if (text == "NaN") {
          out = std::numeric_limits<double>::quiet_NaN();
        } else if (text == "Infinity") {
          out = std::numeric_limits<double>::infinity();
        } else if (text == "-Infinity") {
          out = -std::numeric_limits<double>::infinity();
        } else {
          const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
          if (ec != std::errc() || end != text.data() + text.size()) {
            return fail_type(at, "a number, \"NaN\", \"Infinity\" or \"-Infinity\"", v);
          }
        }
        return true;
      }
      default:
        return fail_type(at, "a number, \"NaN\", \"Infinity\" or \"-Infinity\"", v);
    }
  }

  // Names are accepted besides integers; integers outside the enum are kept (proto3 enums are
  // open), unknown names are errors.
  template <typename Enum>
  bool read_enum(const json::value& v, const PathNode& at,
                 bool (*parse_name)(const std::string&, Enum*), std::string_view what,
                 std::string_view example, Enum& out) {
    if (const json::string* s = v.if_string()) {
      Enum named{};
      if (parse_name(std::string(s->data(), s->size()), &named)) {
        out = named;
        return true;
      }
      const char first = s->empty() ? '\0' : s->front();
      const bool numeric = first == '-' || (first >= '0' && first <= '9');
      if (!numeric) {
        std::string message = "unknown ";
        message += what;
        message += ' ';
        append_quoted(message, view(*s));
        message += " (expected an integer or a name such as ";
        append_quoted(message, example);
        message += ')';
        return fail(at, message);
      }
    } else if (!v.is_number()) {
      return fail_type(at, "an integer or an enum name", v);
    }
    std::int32_t number = 0;
    if (!read_integer(v, at, number)) return false;
    out = static_cast<Enum>(number);
    return true;
  }

  bool read_id(const json::value& v, const PathNode& at, std::size_t bytes, std::string& out) {
    const json::string* s = v.if_string();
    if (s == nullptr) return fail_type(at, "a hex string", v);
    const std::string_view text = view(*s);
    char decoded[kTraceIdBytes];
    if (text.size() != 2 * bytes || !hex_decode(text, decoded)) {
      std::string what = "expected " + std::to_string(2 * bytes) + " hex characters, got ";
      append_quoted(what, text);
      if (looks_like_base64(text, bytes)) what += kBase64IdHint;
      return fail(at, what);
    }
    out.assign(decoded, bytes);
    return true;
  }

  // parentSpanId may be empty (a root span); that leaves it unset.
  bool read_optional_id(const json::value& v, const PathNode& at, std::size_t bytes,
                        std::string& out) {
    if (const json::string* s = v.if_string(); s != nullptr && s->empty()) {
      out.clear();
      return true;
    }
    return read_id(v, at, bytes, out);
  }

  bool resource_spans(const json::value& v, const PathNode& at, ResourceSpans& out) {
    enum Field { kResource, kScopeSpans, kSchemaUrl };
    static constexpr std::array<FieldName, 3> kFields{
        {{"resource", "resource"}, {"scopeSpans", "scope_spans"}, {"schemaUrl", "schema_url"}}};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      switch (field) {
        case kResource:
          return resource(fv, field_at, *out.mutable_resource());
        case kScopeSpans:
          return repeated(fv, field_at, *out.mutable_scope_spans(), &RequestDecoder::scope_spans);
        default:
          return read_string(fv, field_at, *out.mutable_schema_url());
      }
    });
  }

  bool resource(const json::value& v, const PathNode& at, Resource& out) {
    enum Field { kAttributes, kDroppedAttributesCount, kEntityRefs };
    static constexpr std::array<FieldName, 3> kFields{{
        {"attributes", "attributes"},
        {"droppedAttributesCount", "dropped_attributes_count"},
        {"entityRefs", "entity_refs"},
    }};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      switch (field) {
        case kAttributes:
          return key_values(fv, field_at, *out.mutable_attributes(), 0);
        case kDroppedAttributesCount:
          return read_integer_into(fv, field_at, out, &Resource::set_dropped_attributes_count);
        default:
          return repeated(fv, field_at, *out.mutable_entity_refs(), &RequestDecoder::entity_ref);
      }
    });
  }

  bool entity_ref(const json::value& v, const PathNode& at, EntityRef& out) {
    enum Field { kSchemaUrl, kType, kIdKeys, kDescriptionKeys };
    static constexpr std::array<FieldName, 4> kFields{{
        {"schemaUrl", "schema_url"},
        {"type", "type"},
        {"idKeys", "id_keys"},
        {"descriptionKeys", "description_keys"},
    }};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      switch (field) {
        case kSchemaUrl:
          return read_string(fv, field_at, *out.mutable_schema_url());
        case kType:
          return read_string(fv, field_at, *out.mutable_type());
        case kIdKeys:
          return read_strings(fv, field_at, *out.mutable_id_keys());
        default:
          return read_strings(fv, field_at, *out.mutable_description_keys());
      }
    });
  }

  bool scope_spans(const json::value& v, const PathNode& at, ScopeSpans& out) {
    enum Field { kScope, kSpans, kSchemaUrl };
    static constexpr std::array<FieldName, 3> kFields{
        {{"scope", "scope"}, {"spans", "spans"}, {"schemaUrl", "schema_url"}}};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      switch (field) {
        case kScope:
          return scope(fv, field_at, *out.mutable_scope());
        case kSpans:
          return repeated(fv, field_at, *out.mutable_spans(), &RequestDecoder::span);
        default:
          return read_string(fv, field_at, *out.mutable_schema_url());
      }
    });
  }

  bool scope(const json::value& v, const PathNode& at, Scope& out) {
    enum Field { kName, kVersion, kAttributes, kDroppedAttributesCount };
    static constexpr std::array<FieldName, 4> kFields{{
        {"name", "name"},
        {"version", "version"},
        {"attributes", "attributes"},
        {"droppedAttributesCount", "dropped_attributes_count"},
    }};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      switch (field) {
        case kName:
          return read_string(fv, field_at, *out.mutable_name());
        case kVersion:
          return read_string(fv, field_at, *out.mutable_version());
        case kAttributes:
          return key_values(fv, field_at, *out.mutable_attributes(), 0);
        default:
          return read_integer_into(fv, field_at, out, &Scope::set_dropped_attributes_count);
      }
    });
  }

  bool span(const json::value& v, const PathNode& at, Span& out) {
    // Absent ids are left empty: remove_invalid_spans rejects such spans for either encoding.
    return fields(v, at, kSpanFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      return span_field(field, fv, field_at, out);
    });
  }

  // The order of kSpanFields.
  enum class SpanField {
    kTraceId,
    kSpanId,
    kTraceState,
    kParentSpanId,
    kFlags,
    kName,
    kKind,
    kStartTimeUnixNano,
    kEndTimeUnixNano,
    kAttributes,
    kDroppedAttributesCount,
    kEvents,
    kDroppedEventsCount,
    kLinks,
    kDroppedLinksCount,
    kStatus,
  };
  static constexpr std::array<FieldName, 16> kSpanFields{{
      {"traceId", "trace_id"},
      {"spanId", "span_id"},
      {"traceState", "trace_state"},
      {"parentSpanId", "parent_span_id"},
      {"flags", "flags"},
      {"name", "name"},
      {"kind", "kind"},
      {"startTimeUnixNano", "start_time_unix_nano"},
      {"endTimeUnixNano", "end_time_unix_nano"},
      {"attributes", "attributes"},
      {"droppedAttributesCount", "dropped_attributes_count"},
      {"events", "events"},
      {"droppedEventsCount", "dropped_events_count"},
      {"links", "links"},
      {"droppedLinksCount", "dropped_links_count"},
      {"status", "status"},
  }};

  bool span_field(int field, const json::value& fv, const PathNode& field_at, Span& out) {
    using enum SpanField;
    switch (static_cast<SpanField>(field)) {
      case kTraceId:
        return read_id(fv, field_at, kTraceIdBytes, *out.mutable_trace_id());
      case kSpanId:
        return read_id(fv, field_at, kSpanIdBytes, *out.mutable_span_id());
      case kTraceState:
        return read_string(fv, field_at, *out.mutable_trace_state());
      case kParentSpanId:
        return read_optional_id(fv, field_at, kSpanIdBytes, *out.mutable_parent_span_id());
      case kFlags:
        return read_integer_into(fv, field_at, out, &Span::set_flags);
      case kName:
        return read_string(fv, field_at, *out.mutable_name());
      case kKind:
        return span_kind(fv, field_at, out);
      case kStartTimeUnixNano:
        return read_integer_into(fv, field_at, out, &Span::set_start_time_unix_nano);
      case kEndTimeUnixNano:
        return read_integer_into(fv, field_at, out, &Span::set_end_time_unix_nano);
      case kAttributes:
        return key_values(fv, field_at, *out.mutable_attributes(), 0);
      case kDroppedAttributesCount:
        return read_integer_into(fv, field_at, out, &Span::set_dropped_attributes_count);
      case kEvents:
        return repeated(fv, field_at, *out.mutable_events(), &RequestDecoder::span_event);
      case kDroppedEventsCount:
        return read_integer_into(fv, field_at, out, &Span::set_dropped_events_count);
      case kLinks:
        return repeated(fv, field_at, *out.mutable_links(), &RequestDecoder::span_link);
      case kDroppedLinksCount:
        return read_integer_into(fv, field_at, out, &Span::set_dropped_links_count);
      default:
        return span_status(fv, field_at, *out.mutable_status());
    }
  }

  bool span_kind(const json::value& fv, const PathNode& field_at, Span& out) {
    Span::SpanKind kind{};
    if (!read_enum(fv, field_at, &Span::SpanKind_Parse, "span kind", "SPAN_KIND_SERVER", kind)) {
      return false;
    }
    out.set_kind(kind);
    return true;
  }

  bool span_event(const json::value& v, const PathNode& at, SpanEvent& out) {
    enum Field { kTimeUnixNano, kName, kAttributes, kDroppedAttributesCount };
    static constexpr std::array<FieldName, 4> kFields{{
        {"timeUnixNano", "time_unix_nano"},
        {"name", "name"},
        {"attributes", "attributes"},
        {"droppedAttributesCount", "dropped_attributes_count"},
    }};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      switch (field) {
        case kTimeUnixNano:
          return read_integer_into(fv, field_at, out, &SpanEvent::set_time_unix_nano);
        case kName:
          return read_string(fv, field_at, *out.mutable_name());
        case kAttributes:
          return key_values(fv, field_at, *out.mutable_attributes(), 0);
        default:
          return read_integer_into(fv, field_at, out, &SpanEvent::set_dropped_attributes_count);
      }
    });
  }

  bool span_link(const json::value& v, const PathNode& at, SpanLink& out) {
    enum Field { kTraceId, kSpanId, kTraceState, kAttributes, kDroppedAttributesCount, kFlags };
    static constexpr std::array<FieldName, 6> kFields{{
        {"traceId", "trace_id"},
        {"spanId", "span_id"},
        {"traceState", "trace_state"},
        {"attributes", "attributes"},
        {"droppedAttributesCount", "dropped_attributes_count"},
        {"flags", "flags"},
    }};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      switch (field) {
        case kTraceId:
          return read_id(fv, field_at, kTraceIdBytes, *out.mutable_trace_id());
        case kSpanId:
          return read_id(fv, field_at, kSpanIdBytes, *out.mutable_span_id());
        case kTraceState:
          return read_string(fv, field_at, *out.mutable_trace_state());
        case kAttributes:
          return key_values(fv, field_at, *out.mutable_attributes(), 0);
        case kDroppedAttributesCount:
          return read_integer_into(fv, field_at, out, &SpanLink::set_dropped_attributes_count);
        default:
          return read_integer_into(fv, field_at, out, &SpanLink::set_flags);
      }
    });
  }

  bool span_status(const json::value& v, const PathNode& at, SpanStatus& out) {
    enum Field { kMessage, kCode };
    static constexpr std::array<FieldName, 2> kFields{{
        {"message", "message"},
        {"code", "code"},
    }};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      if (field == kMessage) return read_string(fv, field_at, *out.mutable_message());
      SpanStatus::StatusCode code{};
      if (!read_enum(fv, field_at, &SpanStatus::StatusCode_Parse, "status code",
                     "STATUS_CODE_ERROR", code)) {
        return false;
      }
      out.set_code(code);
      return true;
    });
  }

  // `depth` counts the arrays and kvlists around these values, so hostile nesting is bounded.
  bool key_values(const json::value& v, const PathNode& at, KeyValues& out, int depth) {
    return repeated(v, at, out,
                    [&](const json::value& item, const PathNode& item_at, KeyValue& kv) {
                      return key_value(item, item_at, kv, depth);
                    });
  }

  bool key_value(const json::value& v, const PathNode& at, KeyValue& out, int depth) {
    enum Field { kKey, kValue };
    static constexpr std::array<FieldName, 2> kFields{{{"key", "key"}, {"value", "value"}}};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      if (field == kKey) return read_string(fv, field_at, *out.mutable_key());
      return any_value(fv, field_at, *out.mutable_value(), depth);
    });
  }

  bool any_value(const json::value& v, const PathNode& at, AnyValue& out, int depth) {
    enum Field { kString, kBool, kInt, kDouble, kArray, kKvlist, kBytes };
    static constexpr std::array<FieldName, 7> kFields{{
        {"stringValue", "string_value"},
        {"boolValue", "bool_value"},
        {"intValue", "int_value"},
        {"doubleValue", "double_value"},
        {"arrayValue", "array_value"},
        {"kvlistValue", "kvlist_value"},
        {"bytesValue", "bytes_value"},
    }};
    return fields(v, at, kFields, [&](int field, const json::value& fv, const PathNode& field_at) {
      if (out.value_case() != AnyValue::VALUE_NOT_SET) {
        return fail(field_at, "an AnyValue holds one value, but it already has another");
      }
      switch (field) {
        case kString:
          return read_string(fv, field_at, *out.mutable_string_value());
        case kBool: {
          bool b = false;
          if (!read_bool(fv, field_at, b)) return false;
          out.set_bool_value(b);
          return true;
        }
        case kInt: {
          std::int64_t i = 0;
          if (!read_integer(fv, field_at, i)) return false;
          out.set_int_value(i);
          return true;
        }
        case kDouble: {
          double d = 0;
          if (!read_double(fv, field_at, d)) return false;
          out.set_double_value(d);
          return true;
        }
        case kArray:
          if (depth >= kMaxAnyValueDepth) return fail_depth(field_at);
          return array_value(fv, field_at, *out.mutable_array_value(), depth + 1);
        case kKvlist:
          if (depth >= kMaxAnyValueDepth) return fail_depth(field_at);
          return kvlist_value(fv, field_at, *out.mutable_kvlist_value(), depth + 1);
        default: {
          const json::string* s = fv.if_string();
          if (s == nullptr) return fail_type(field_at, "a base64 string", fv);
          if (!base64_decode(view(*s), *out.mutable_bytes_value())) {
            return fail_type(field_at, "a base64 string", fv);
          }
          return true;
        }
      }
    });
  }

  bool fail_depth(const PathNode& at) {
    return fail(at, "AnyValue nested deeper than " + std::to_string(kMaxAnyValueDepth) +
                        " arrays and kvlists");
  }

  bool array_value(const json::value& v, const PathNode& at, ArrayValue& out, int depth) {
    static constexpr std::array<FieldName, 1> kFields{{{"values", "values"}}};
    return fields(v, at, kFields, [&](int, const json::value& fv, const PathNode& field_at) {
      return repeated(fv, field_at, *out.mutable_values(),
                      [&](const json::value& item, const PathNode& item_at, AnyValue& value) {
                        return any_value(item, item_at, value, depth);
                      });
    });
  }

  bool kvlist_value(const json::value& v, const PathNode& at, KeyValueList& out, int depth) {
    static constexpr std::array<FieldName, 1> kFields{{{"values", "values"}}};
    return fields(v, at, kFields, [&](int, const json::value& fv, const PathNode& field_at) {
      return key_values(fv, field_at, *out.mutable_values(), depth);
    });
  }

  std::string error_;
};

// ---------------------------------------------------------------------------------------------
// Encoding

// Builds the DOM in one arena-backed storage, so nested objects move into their parents.
class Encoder {
 public:
  explicit Encoder(json::storage_ptr storage) : storage_(std::move(storage)) {}

  json::object request(const ExportRequest& request) {
    json::object out(storage_);
    put_array(out, "resourceSpans", request.resource_spans(),
              [&](const ResourceSpans& rs) { return resource_spans(rs); });
    return out;
  }

  json::object response(const ExportResponse& response) {
    json::object out(storage_);
    if (!response.has_partial_success()) return out;
    const auto& partial = response.partial_success();
    json::object partial_json(storage_);
    if (partial.rejected_spans() != 0) {
      partial_json.emplace("rejectedSpans", decimal(partial.rejected_spans()));
    }
    put_string(partial_json, "errorMessage", partial.error_message());
    out.emplace("partialSuccess", std::move(partial_json));
    return out;
  }

  // code and message are always written: clients read them even when they are defaults.
  json::object status(const RpcStatus& status) {
    json::object out(storage_);
    out.emplace("code", status.code());
    out.emplace("message", json::string_view(status.message()));
    // Our statuses carry no details; any that appear keep their type URL and raw bytes.
    put_array(out, "details", status.details(), [&](const google::protobuf::Any& any) {
      json::object detail(storage_);
      detail.emplace("@type", json::string_view(any.type_url()));
      detail.emplace("value", base64(any.value()));
      return detail;
    });
    return out;
  }

 private:
  json::object resource_spans(const ResourceSpans& rs) {
    json::object out(storage_);
    if (rs.has_resource()) out.emplace("resource", resource(rs.resource()));
    put_array(out, "scopeSpans", rs.scope_spans(),
              [&](const ScopeSpans& ss) { return scope_spans(ss); });
    put_string(out, "schemaUrl", rs.schema_url());
    return out;
  }

  json::object resource(const Resource& resource) {
    json::object out(storage_);
    put_key_values(out, "attributes", resource.attributes());
    put_count(out, "droppedAttributesCount", resource.dropped_attributes_count());
    put_array(out, "entityRefs", resource.entity_refs(), [&](const EntityRef& ref) {
      json::object ref_json(storage_);
      put_string(ref_json, "schemaUrl", ref.schema_url());
      put_string(ref_json, "type", ref.type());
      const auto as_view = [](const std::string& key) { return json::string_view(key); };
      put_array(ref_json, "idKeys", ref.id_keys(), as_view);
      put_array(ref_json, "descriptionKeys", ref.description_keys(), as_view);
      return ref_json;
    });
    return out;
  }

  json::object scope_spans(const ScopeSpans& ss) {
    json::object out(storage_);
    if (ss.has_scope()) {
      const Scope& scope = ss.scope();
      json::object scope_json(storage_);
      put_string(scope_json, "name", scope.name());
      put_string(scope_json, "version", scope.version());
      put_key_values(scope_json, "attributes", scope.attributes());
      put_count(scope_json, "droppedAttributesCount", scope.dropped_attributes_count());
      out.emplace("scope", std::move(scope_json));
    }
    put_array(out, "spans", ss.spans(), [&](const Span& s) { return span(s); });
    put_string(out, "schemaUrl", ss.schema_url());
    return out;
  }

  json::object span(const Span& span) {
    json::object out(storage_);
    out.reserve(16);
    put_hex(out, "traceId", span.trace_id());
    put_hex(out, "spanId", span.span_id());
    put_string(out, "traceState", span.trace_state());
    put_hex(out, "parentSpanId", span.parent_span_id());
    put_count(out, "flags", span.flags());
    put_string(out, "name", span.name());
    if (span.kind() != 0) out.emplace("kind", static_cast<std::int64_t>(span.kind()));
    put_u64(out, "startTimeUnixNano", span.start_time_unix_nano());
    put_u64(out, "endTimeUnixNano", span.end_time_unix_nano());
    put_key_values(out, "attributes", span.attributes());
    put_count(out, "droppedAttributesCount", span.dropped_attributes_count());
    put_array(out, "events", span.events(), [&](const SpanEvent& event) {
      json::object event_json(storage_);
      put_u64(event_json, "timeUnixNano", event.time_unix_nano());
      put_string(event_json, "name", event.name());
      put_key_values(event_json, "attributes", event.attributes());
      put_count(event_json, "droppedAttributesCount", event.dropped_attributes_count());
      return event_json;
    });
    put_count(out, "droppedEventsCount", span.dropped_events_count());
    put_array(out, "links", span.links(), [&](const SpanLink& link) {
      json::object link_json(storage_);
      put_hex(link_json, "traceId", link.trace_id());
      put_hex(link_json, "spanId", link.span_id());
      put_string(link_json, "traceState", link.trace_state());
      put_key_values(link_json, "attributes", link.attributes());
      put_count(link_json, "droppedAttributesCount", link.dropped_attributes_count());
      put_count(link_json, "flags", link.flags());
      return link_json;
    });
    put_count(out, "droppedLinksCount", span.dropped_links_count());
    if (span.has_status()) {
      const SpanStatus& status = span.status();
      json::object status_json(storage_);
      put_string(status_json, "message", status.message());
      if (status.code() != 0) status_json.emplace("code", static_cast<std::int64_t>(status.code()));
      out.emplace("status", std::move(status_json));
    }
    return out;
  }

  json::object key_value(const KeyValue& kv) {
    json::object out(storage_);
    put_string(out, "key", kv.key());
    if (kv.has_value()) out.emplace("value", any_value(kv.value()));
    return out;
  }

  // A oneof member is written even when it holds its default: presence is part of the value.
  json::object any_value(const AnyValue& value) {
    json::object out(storage_);
    switch (value.value_case()) {
      case AnyValue::kStringValue:
        out.emplace("stringValue", json::string_view(value.string_value()));
        break;
      case AnyValue::kBoolValue:
        out.emplace("boolValue", value.bool_value());
        break;
      case AnyValue::kIntValue:
        out.emplace("intValue", decimal(value.int_value()));
        break;
      case AnyValue::kDoubleValue:
        out.emplace("doubleValue", double_value(value.double_value()));
        break;
      case AnyValue::kArrayValue: {
        json::object array_json(storage_);
        put_array(array_json, "values", value.array_value().values(),
                  [&](const AnyValue& item) { return any_value(item); });
        out.emplace("arrayValue", std::move(array_json));
        break;
      }
      case AnyValue::kKvlistValue: {
        json::object kvlist_json(storage_);
        put_key_values(kvlist_json, "values", value.kvlist_value().values());
        out.emplace("kvlistValue", std::move(kvlist_json));
        break;
      }
      case AnyValue::kBytesValue:
        out.emplace("bytesValue", base64(value.bytes_value()));
        break;
      case AnyValue::VALUE_NOT_SET:
        break;
    }
    return out;
  }

  template <typename Repeated, typename EncodeOne>
  void put_array(json::object& out, std::string_view key, const Repeated& items,
                 EncodeOne&& encode_one) {
    if (items.empty()) return;
    json::array array(storage_);
    array.reserve(static_cast<std::size_t>(items.size()));
    for (const auto& item : items) array.emplace_back(encode_one(item));
    out.emplace(key, std::move(array));
  }

  void put_key_values(json::object& out, std::string_view key, const KeyValues& items) {
    put_array(out, key, items, [&](const KeyValue& kv) { return key_value(kv); });
  }

  static void put_string(json::object& out, std::string_view key, const std::string& value) {
    if (!value.empty()) out.emplace(key, json::string_view(value));
  }

  static void put_count(json::object& out, std::string_view key, std::uint32_t value) {
    if (value != 0) out.emplace(key, value);
  }

  // fixed64 follows protobuf's JSON convention for 64-bit integers: a decimal string.
  void put_u64(json::object& out, std::string_view key, std::uint64_t value) {
    if (value != 0) out.emplace(key, decimal(value));
  }

  static void put_hex(json::object& out, std::string_view key, const std::string& bytes) {
    if (!bytes.empty()) out.emplace(key, json::string_view(to_hex(bytes)));
  }

  json::string base64(const std::string& bytes) {
    json::string text(storage_);
    text.resize(base64_encoded_size(bytes.size()));
    base64_encode(bytes, text.data());
    return text;
  }

  template <typename Integer>
  json::string decimal(Integer value) {
    char buffer[24];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
    const auto size = static_cast<std::size_t>(result.ptr - buffer);
    return json::string(json::string_view(buffer, size), storage_);
  }

  // Non-finite values are protobuf JSON's special strings; integral values print as integers
  // ("3", not Boost's "3E0"); -0 stays a double so its sign survives.
  json::value double_value(double d) {
    if (std::isnan(d)) return json::value(json::string_view("NaN"), storage_);
    if (std::isinf(d)) {
      return json::value(json::string_view(d > 0 ? "Infinity" : "-Infinity"), storage_);
    }
    constexpr double kExactIntegerLimit = 9007199254740992.0;  // 2^53
    if (d == std::trunc(d) && std::fabs(d) < kExactIntegerLimit && !(d == 0 && std::signbit(d))) {
      return json::value(static_cast<std::int64_t>(d), storage_);
    }
    return json::value(d, storage_);
  }

  json::storage_ptr storage_;
};

template <typename Build>
std::string encode_with(Build&& build) {
  unsigned char buffer[1024];
  json::monotonic_resource arena(buffer, sizeof buffer);
  Encoder encoder(&arena);
  return json::serialize(build(encoder));
}

}  // namespace

DecodeResult decode_json(std::string_view body, ExportRequest& out) {
  // One arena for the whole DOM; the first block is sized for a typical DOM of this body.
  json::monotonic_resource arena(body.size() + kParserTempBytes);
  DecodeResult result;
  const json::value root = parse_body(body, &arena, result);
  if (!result.ok()) return result;
  RequestDecoder decoder;
  if (!decoder.decode(root, out)) return DecodeResult::failure(DecodeError::invalid_request, decoder.take_error());
  return DecodeResult::success();
}

std::string encode_json(const ExportRequest& request) {
  return encode_with([&](Encoder& encoder) { return encoder.request(request); });
}

std::string encode_json(const ExportResponse& response) {
  return encode_with([&](Encoder& encoder) { return encoder.response(response); });
}

std::string encode_json(const RpcStatus& status) {
  return encode_with([&](Encoder& encoder) { return encoder.status(status); });
}

}  // namespace proxy::otlp
