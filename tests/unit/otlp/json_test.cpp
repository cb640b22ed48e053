#include "otlp/json.hpp"

#include <catch2/catch.hpp>
#include <google/protobuf/arena.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <limits>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <string_view>

#include "common/hex.hpp"

namespace {

using proxy::to_hex;
using proxy::otlp::AnyValue;
using proxy::otlp::decode_json;
using proxy::otlp::DecodeResult;
using proxy::otlp::encode_json;
using proxy::otlp::ExportRequest;
using proxy::otlp::ExportResponse;
using proxy::otlp::KeyValue;
using proxy::otlp::RpcStatus;
using proxy::otlp::Span;

constexpr std::string_view kTraceHex = "5b8efff798038103d269b633813fc60c";
constexpr std::string_view kSpanHex = "eee19b7ec3c1b174";
constexpr std::string_view kSpanPath = "resourceSpans[0].scopeSpans[0].spans[0]";
constexpr std::string_view kValuePath = "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].value";

std::string cat(std::string_view a, std::string_view b) { return std::string(a) + std::string(b); }

// One span with valid ids plus `fields` (a JSON fragment without braces).
std::string with_span(std::string_view fields) {
  std::string body = R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":")";
  body += kTraceHex;
  body += R"(","spanId":")";
  body += kSpanHex;
  body += '"';
  if (!fields.empty()) {
    body += ',';
    body += fields;
  }
  body += "}]}]}]}";
  return body;
}

// One span whose only attribute "k" has the AnyValue `value_json`.
std::string with_value(std::string_view value_json) {
  return with_span(cat(R"("attributes":[{"key":"k","value":)", value_json) + "}]");
}

ExportRequest decode_ok(std::string_view body) {
  ExportRequest request;
  const DecodeResult result = decode_json(body, request);
  INFO(result.message);
  REQUIRE(result.ok());
  REQUIRE(result.message.empty());
  return request;
}

std::string decode_error(std::string_view body) {
  ExportRequest request;
  const DecodeResult result = decode_json(body, request);
  REQUIRE_FALSE(result.ok());
  return result.message;
}

const Span& first_span(const ExportRequest& request) {
  REQUIRE(request.resource_spans_size() > 0);
  REQUIRE(request.resource_spans(0).scope_spans_size() > 0);
  REQUIRE(request.resource_spans(0).scope_spans(0).spans_size() > 0);
  return request.resource_spans(0).scope_spans(0).spans(0);
}

const AnyValue& first_value(const ExportRequest& request) {
  const Span& span = first_span(request);
  REQUIRE(span.attributes_size() > 0);
  return span.attributes(0).value();
}

AnyValue decode_value(std::string_view value_json) {
  return first_value(decode_ok(with_value(value_json)));
}

std::string value_error(std::string_view value_json) { return decode_error(with_value(value_json)); }

std::string span_error(std::string_view fields) { return decode_error(with_span(fields)); }

bool same_message(const google::protobuf::Message& expected, const google::protobuf::Message& actual,
                  std::string& differences) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  differencer.ReportDifferencesToString(&differences);
  return differencer.Compare(expected, actual);
}

#define REQUIRE_SAME_MESSAGE(expected, actual)                       \
  do {                                                               \
    std::string differences_;                                        \
    const bool same_ = same_message(expected, actual, differences_); \
    INFO(differences_);                                              \
    REQUIRE(same_);                                                  \
  } while (false)

std::string read_data_file(const std::string& relative) {
  std::ifstream file(std::string(PROXY_TEST_DATA_DIR) + "/" + relative, std::ios::binary);
  REQUIRE(file.good());
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

// Every field of the OTLP trace model, in lowerCamelCase.
constexpr std::string_view kFullRequest = R"({
  "resourceSpans": [{
    "resource": {
      "attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}],
      "droppedAttributesCount": 1,
      "entityRefs": [{"schemaUrl": "https://opentelemetry.io/schemas/1.26.0", "type": "service",
                      "idKeys": ["service.name"], "descriptionKeys": ["service.version"]}]
    },
    "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
    "scopeSpans": [{
      "scope": {"name": "ai.koog", "version": "0.5.2",
                "attributes": [{"key": "scope.attr", "value": {"boolValue": true}}],
                "droppedAttributesCount": 2},
      "schemaUrl": "https://opentelemetry.io/schemas/1.25.0",
      "spans": [{
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "traceState": "vendor=value",
        "parentSpanId": "1c9d3a7be0f24811",
        "flags": 257,
        "name": "chat gpt-4o",
        "kind": 3,
        "startTimeUnixNano": "1730812000000000000",
        "endTimeUnixNano": "18446744073709551615",
        "attributes": [
          {"key": "s", "value": {"stringValue": "héllo \"quoted\"\n"}},
          {"key": "b", "value": {"boolValue": false}},
          {"key": "i", "value": {"intValue": "-9223372036854775808"}},
          {"key": "d", "value": {"doubleValue": 0.1}},
          {"key": "bytes", "value": {"bytesValue": "AAECAwQF/w=="}},
          {"key": "a", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"doubleValue": "NaN"}, {}]}}},
          {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "inner", "value": {"stringValue": "x"}}]}}},
          {"key": "empty"}
        ],
        "droppedAttributesCount": 3,
        "events": [{"timeUnixNano": "1730812000000000001", "name": "gen_ai.choice",
                    "attributes": [{"key": "index", "value": {"intValue": "0"}}],
                    "droppedAttributesCount": 4}],
        "droppedEventsCount": 5,
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
                   "traceState": "k=v", "attributes": [{"key": "l", "value": {"stringValue": "v"}}],
                   "droppedAttributesCount": 6, "flags": 1}],
        "droppedLinksCount": 7,
        "status": {"message": "boom", "code": 2}
      }]
    }]
  }]
})";

// The .proto spelling of every lowerCamelCase key in `body` (string values are left alone).
std::string to_snake_keys(std::string_view body) {
  static const std::regex kKey(R"re("([a-z]+[A-Z][A-Za-z]*)"\s*:)re");
  std::string out;
  std::string rest(body);
  std::smatch match;
  while (std::regex_search(rest, match, kKey)) {
    out += match.prefix();
    std::string snake;
    for (const char c : match[1].str()) {
      if (c >= 'A' && c <= 'Z') {
        snake += '_';
        snake += static_cast<char>(c - 'A' + 'a');
      } else {
        snake += c;
      }
    }
    out += '"' + snake + "\":";
    rest = match.suffix();
  }
  return out + rest;
}

// `depth` arrays (or kvlists) around an intValue.
std::string nested_arrays(int depth) {
  std::string open;
  std::string close;
  for (int i = 0; i < depth; ++i) {
    open += R"({"arrayValue":{"values":[)";
    close += "]}}";
  }
  return open + R"({"intValue":"1"})" + close;
}

std::string nested_kvlists(int depth) {
  std::string open;
  std::string close;
  for (int i = 0; i < depth; ++i) {
    open += R"({"kvlistValue":{"values":[{"key":"k","value":)";
    close += "}]}}";
  }
  return open + R"({"intValue":"1"})" + close;
}

}  // namespace

// --- ids ---------------------------------------------------------------------------------------

TEST_CASE("decode_json reads hex ids in lower and upper case into raw bytes") {
  const ExportRequest lower = decode_ok(with_span(R"("parentSpanId":"1c9d3a7be0f24811")"));
  const Span& span = first_span(lower);
  REQUIRE(span.trace_id().size() == 16);
  REQUIRE(span.span_id().size() == 8);
  REQUIRE(to_hex(span.trace_id()) == kTraceHex);
  REQUIRE(to_hex(span.span_id()) == kSpanHex);
  REQUIRE(to_hex(span.parent_span_id()) == "1c9d3a7be0f24811");

  const ExportRequest upper = decode_ok(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C",)"
      R"("spanId":"EEE19B7EC3C1B174","parentSpanId":"1C9d3A7bE0F24811"}]}]}]})");
  REQUIRE(first_span(upper).trace_id() == span.trace_id());
  REQUIRE(first_span(upper).span_id() == span.span_id());
  REQUIRE(first_span(upper).parent_span_id() == span.parent_span_id());
}

TEST_CASE("decode_json rejects base64 ids with a hint and the exact path") {
  const std::string body =
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[)"
      R"({"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},)"
      R"({"traceId":"AAECAwQFBgcICQoLDA0ODw==","spanId":"eee19b7ec3c1b174"}]}]}]})";
  REQUIRE(decode_error(body) ==
          R"(resourceSpans[0].scopeSpans[0].spans[1].traceId: expected 32 hex characters, got )"
          R"("AAECAwQFBgcICQoLDA0ODw==" (OTLP-JSON encodes ids as hex, not base64))");

  const std::string span_id = decode_error(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",)"
      R"("spanId":"AAECAwQFBgc="}]}]}]})");
  REQUIRE(span_id == cat(kSpanPath, R"(.spanId: expected 16 hex characters, got "AAECAwQFBgc=" )"
                                    R"((OTLP-JSON encodes ids as hex, not base64))"));

  // Unpadded base64 of 16 bytes is 22 characters, still recognisable.
  REQUIRE_THAT(span_error(R"("parentSpanId":"AAECAwQFBgc")"),
               Catch::Contains("parentSpanId: expected 16 hex characters") &&
                   Catch::EndsWith("(OTLP-JSON encodes ids as hex, not base64)"));

  REQUIRE(span_error(R"("links":[{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"eee19b7ec3c1b174"}])") ==
          cat(kSpanPath, R"(.links[0].traceId: expected 32 hex characters, got "W47/95gDgQPSabYzgT/GDA==" )"
                         R"((OTLP-JSON encodes ids as hex, not base64))"));
}

TEST_CASE("decode_json rejects ids of the wrong length or with non-hex characters") {
  const std::string short_trace = decode_error(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc6",)"
      R"("spanId":"eee19b7ec3c1b174"}]}]}]})");
  REQUIRE(short_trace ==
          cat(kSpanPath, R"(.traceId: expected 32 hex characters, got "5b8efff798038103d269b633813fc6")"));

  const std::string not_hex = decode_error(
      R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc6zz",)"
      R"("spanId":"eee19b7ec3c1b174"}]}]}]})");
  REQUIRE(not_hex ==
          cat(kSpanPath, R"(.traceId: expected 32 hex characters, got "5b8efff798038103d269b633813fc6zz")"));

  // A trace id where a span id belongs.
  REQUIRE(span_error(R"("parentSpanId":"5b8efff798038103d269b633813fc60c")") ==
          cat(kSpanPath, R"(.parentSpanId: expected 16 hex characters, got "5b8efff798038103d269b633813fc60c")"));
  REQUIRE(span_error(R"("parentSpanId":12)") == cat(kSpanPath, ".parentSpanId: expected a hex string, got 12"));
}

TEST_CASE("decode_json treats an empty parentSpanId as unset and rejects empty traceId and spanId") {
  REQUIRE(first_span(decode_ok(with_span(R"("parentSpanId":"")"))).parent_span_id().empty());

  REQUIRE(decode_error(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"","spanId":"eee19b7ec3c1b174"}]}]}]})") ==
          cat(kSpanPath, R"(.traceId: expected 32 hex characters, got "")"));
  REQUIRE(decode_error(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":""}]}]}]})") ==
          cat(kSpanPath, R"(.spanId: expected 16 hex characters, got "")"));
  REQUIRE(span_error(R"("links":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":""}])") ==
          cat(kSpanPath, R"(.links[0].spanId: expected 16 hex characters, got "")"));
}

TEST_CASE("decode_json leaves absent ids empty for remove_invalid_spans to reject") {
  const ExportRequest request =
      decode_ok(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"no ids","spanId":null,"links":[{}]}]}]}]})");
  const Span& span = first_span(request);
  REQUIRE(span.trace_id().empty());
  REQUIRE(span.span_id().empty());
  REQUIRE(span.links(0).trace_id().empty());
}

// --- integers ----------------------------------------------------------------------------------

TEST_CASE("decode_json reads 64-bit integers from decimal strings and from numbers") {
  REQUIRE(decode_value(R"({"intValue":"123"})").int_value() == 123);
  REQUIRE(decode_value(R"({"intValue":123})").int_value() == 123);
  REQUIRE(decode_value(R"({"intValue":"-42"})").int_value() == -42);
  REQUIRE(decode_value(R"({"intValue":-42})").int_value() == -42);
  REQUIRE(decode_value(R"({"intValue":"9223372036854775807"})").int_value() == INT64_MAX);
  REQUIRE(decode_value(R"({"intValue":9223372036854775807})").int_value() == INT64_MAX);
  REQUIRE(decode_value(R"({"intValue":"-9223372036854775808"})").int_value() == INT64_MIN);
  REQUIRE(decode_value(R"({"intValue":-9223372036854775808})").int_value() == INT64_MIN);
  REQUIRE(decode_value(R"({"intValue":1e3})").int_value() == 1000);
  REQUIRE(decode_value(R"({"intValue":"0"})").value_case() == AnyValue::kIntValue);

  const Span max = first_span(decode_ok(
      with_span(R"("startTimeUnixNano":"18446744073709551615","endTimeUnixNano":18446744073709551615)")));
  REQUIRE(max.start_time_unix_nano() == UINT64_MAX);
  REQUIRE(max.end_time_unix_nano() == UINT64_MAX);

  const Span typical = first_span(decode_ok(with_span(
      R"("startTimeUnixNano":1730812000123456789,"endTimeUnixNano":"1730812000999999999",)"
      R"("droppedAttributesCount":"4294967295","droppedEventsCount":7,"droppedLinksCount":"-0","flags":"257")")));
  REQUIRE(typical.start_time_unix_nano() == 1730812000123456789ULL);
  REQUIRE(typical.end_time_unix_nano() == 1730812000999999999ULL);
  REQUIRE(typical.dropped_attributes_count() == UINT32_MAX);
  REQUIRE(typical.dropped_events_count() == 7);
  REQUIRE(typical.dropped_links_count() == 0);
  REQUIRE(typical.flags() == 257);
}

TEST_CASE("decode_json rejects negative, out-of-range, fractional and non-numeric integers naming the path") {
  const std::string int_path = cat(kValuePath, ".intValue: ");
  REQUIRE(value_error(R"({"intValue":"9223372036854775808"})") ==
          int_path + R"(out of range for int64, got "9223372036854775808")");
  REQUIRE(value_error(R"({"intValue":9223372036854775808})") ==
          int_path + "out of range for int64, got 9223372036854775808");
  REQUIRE(value_error(R"({"intValue":"-9223372036854775809"})") ==
          int_path + R"(out of range for int64, got "-9223372036854775809")");
  REQUIRE(value_error(R"({"intValue":1.5})") == int_path + "expected an integer, got 1.5");
  REQUIRE(value_error(R"({"intValue":"1.5"})") ==
          int_path + R"(expected an integer (number or decimal string), got "1.5")");
  REQUIRE(value_error(R"({"intValue":"12abc"})") ==
          int_path + R"(expected an integer (number or decimal string), got "12abc")");
  REQUIRE(value_error(R"({"intValue":" 12"})") ==
          int_path + R"(expected an integer (number or decimal string), got " 12")");
  REQUIRE(value_error(R"({"intValue":""})") == int_path + R"(expected an integer (number or decimal string), got "")");
  REQUIRE(value_error(R"({"intValue":true})") == int_path + "expected an integer (number or decimal string), got true");

  const std::string start_path = cat(kSpanPath, ".startTimeUnixNano: ");
  REQUIRE(span_error(R"("startTimeUnixNano":"-1")") == start_path + R"(expected a non-negative integer, got "-1")");
  REQUIRE(span_error(R"("startTimeUnixNano":-1)") == start_path + "expected a non-negative integer, got -1");
  REQUIRE(span_error(R"("startTimeUnixNano":"18446744073709551616")") ==
          start_path + R"(out of range for uint64, got "18446744073709551616")");
  REQUIRE(span_error(R"("startTimeUnixNano":18446744073709551616)") ==
          start_path + "out of range for uint64, got 18446744073709551616");
  REQUIRE(span_error(R"("startTimeUnixNano":1e300)") == start_path + "out of range for uint64, got 1e+300");
  REQUIRE(span_error(R"("startTimeUnixNano":"soon")") ==
          start_path + R"(expected an integer (number or decimal string), got "soon")");

  REQUIRE(span_error(R"("droppedAttributesCount":4294967296)") ==
          cat(kSpanPath, ".droppedAttributesCount: out of range for uint32, got 4294967296"));
  REQUIRE(span_error(R"("flags":-1)") == cat(kSpanPath, ".flags: expected a non-negative integer, got -1"));
  REQUIRE(span_error(R"("events":[{"timeUnixNano":0.5}])") ==
          cat(kSpanPath, ".events[0].timeUnixNano: expected an integer, got 0.5"));
}

// --- doubles, bools, bytes ----------------------------------------------------------------------

TEST_CASE("decode_json reads doubles from numbers and from NaN and infinity strings") {
  REQUIRE(decode_value(R"({"doubleValue":0.7})").double_value() == 0.7);
  REQUIRE(decode_value(R"({"doubleValue":-2.5e-3})").double_value() == -2.5e-3);
  REQUIRE(decode_value(R"({"doubleValue":3})").double_value() == 3.0);
  REQUIRE(decode_value(R"({"doubleValue":18446744073709551615})").double_value() == 18446744073709551615.0);
  REQUIRE(decode_value(R"({"doubleValue":"1.25"})").double_value() == 1.25);
  REQUIRE(std::isnan(decode_value(R"({"doubleValue":"NaN"})").double_value()));
  REQUIRE(decode_value(R"({"doubleValue":"Infinity"})").double_value() == std::numeric_limits<double>::infinity());
  REQUIRE(decode_value(R"({"doubleValue":"-Infinity"})").double_value() == -std::numeric_limits<double>::infinity());
  // Boost 1.81's own decimal conversion is an ulp off for this one.
  REQUIRE(decode_value(R"({"doubleValue":2.3820188140736326E2})").double_value() == 238.20188140736326);
  REQUIRE(std::signbit(decode_value(R"({"doubleValue":-0.0})").double_value()));

  REQUIRE(value_error(R"({"doubleValue":"fast"})") ==
          cat(kValuePath, R"(.doubleValue: expected a number, "NaN", "Infinity" or "-Infinity", got "fast")"));
  REQUIRE(value_error(R"({"doubleValue":[1]})") ==
          cat(kValuePath, R"(.doubleValue: expected a number, "NaN", "Infinity" or "-Infinity", got an array)"));
}

TEST_CASE("decode_json reads strings and booleans with their JSON types only") {
  REQUIRE(decode_value(R"({"boolValue":true})").bool_value());
  const AnyValue empty_string = decode_value(R"({"stringValue":""})");
  REQUIRE(empty_string.value_case() == AnyValue::kStringValue);
  REQUIRE(decode_value(R"({"stringValue":"caf\u00e9 \ud83d\ude00"})").string_value() == "café 😀");
  REQUIRE(value_error(R"({"boolValue":"true"})") == cat(kValuePath, R"(.boolValue: expected a boolean, got "true")"));
  REQUIRE(value_error(R"({"stringValue":42})") == cat(kValuePath, ".stringValue: expected a string, got 42"));
}

TEST_CASE("decode_json decodes bytesValue from standard or URL-safe base64") {
  const std::string expected("\x00\x01\x02\x03\x04\x05\xff", 7);
  REQUIRE(decode_value(R"({"bytesValue":"AAECAwQF/w=="})").bytes_value() == expected);
  REQUIRE(decode_value(R"({"bytesValue":"AAECAwQF_w"})").bytes_value() == expected);
  REQUIRE(decode_value(R"({"bytesValue":"aGk="})").bytes_value() == "hi");
  REQUIRE(decode_value(R"({"bytesValue":"aGVsbG8h"})").bytes_value() == "hello!");
  const AnyValue empty = decode_value(R"({"bytesValue":""})");
  REQUIRE(empty.value_case() == AnyValue::kBytesValue);
  REQUIRE(empty.bytes_value().empty());

  const std::string bytes_path = cat(kValuePath, ".bytesValue: ");
  REQUIRE(value_error(R"({"bytesValue":"!!!!"})") == bytes_path + R"(expected a base64 string, got "!!!!")");
  REQUIRE(value_error(R"({"bytesValue":"AAECA"})") == bytes_path + R"(expected a base64 string, got "AAECA")");
  REQUIRE(value_error(R"({"bytesValue":"aGk\"="})") == bytes_path + R"(expected a base64 string, got "aGk\"=")");
  REQUIRE(value_error(R"({"bytesValue":"a==="})") == bytes_path + R"(expected a base64 string, got "a===")");
  REQUIRE(value_error(R"({"bytesValue":[1,2]})") == bytes_path + "expected a base64 string, got an array");
}

// --- nesting ------------------------------------------------------------------------------------

TEST_CASE("decode_json decodes nested arrays and kvlists") {
  const AnyValue value = decode_value(
      R"({"kvlistValue":{"values":[{"key":"role","value":{"stringValue":"assistant"}},)"
      R"({"key":"tool_calls","value":{"arrayValue":{"values":[{"intValue":"1"},{"boolValue":true},{},)"
      R"({"arrayValue":{}}]}}}]}})");
  REQUIRE(value.value_case() == AnyValue::kKvlistValue);
  const auto& kvs = value.kvlist_value().values();
  REQUIRE(kvs.size() == 2);
  REQUIRE(kvs[0].key() == "role");
  REQUIRE(kvs[0].value().string_value() == "assistant");
  REQUIRE(kvs[1].key() == "tool_calls");
  const auto& items = kvs[1].value().array_value().values();
  REQUIRE(items.size() == 4);
  REQUIRE(items[0].int_value() == 1);
  REQUIRE(items[1].bool_value());
  REQUIRE(items[2].value_case() == AnyValue::VALUE_NOT_SET);
  REQUIRE(items[3].value_case() == AnyValue::kArrayValue);
  REQUIRE(items[3].array_value().values().empty());

  REQUIRE(value_error(R"({"arrayValue":{"values":[{"intValue":"1"},{"stringValue":5}]}})") ==
          cat(kValuePath, ".arrayValue.values[1].stringValue: expected a string, got 5"));
  REQUIRE(value_error(R"({"kvlistValue":{"values":[{"key":"a","value":{"boolValue":1}}]}})") ==
          cat(kValuePath, ".kvlistValue.values[0].value.boolValue: expected a boolean, got 1"));
  REQUIRE(value_error(R"({"arrayValue":[{"intValue":"1"}]})") ==
          cat(kValuePath, ".arrayValue: expected an object, got an array"));
}

TEST_CASE("decode_json limits AnyValue nesting to 64 arrays or kvlists and names the path") {
  REQUIRE(decode_value(nested_arrays(64)).value_case() == AnyValue::kArrayValue);
  REQUIRE(decode_value(nested_kvlists(64)).value_case() == AnyValue::kKvlistValue);

  std::string expected(kValuePath);
  for (int i = 0; i < 64; ++i) expected += ".arrayValue.values[0]";
  expected += ".arrayValue: AnyValue nested deeper than 64 arrays and kvlists";
  REQUIRE(value_error(nested_arrays(65)) == expected);

  std::string expected_kv(kValuePath);
  for (int i = 0; i < 64; ++i) expected_kv += ".kvlistValue.values[0].value";
  expected_kv += ".kvlistValue: AnyValue nested deeper than 64 arrays and kvlists";
  REQUIRE(value_error(nested_kvlists(65)) == expected_kv);

  // Event attributes sit deeper in the document and get the same limit.
  const std::string event = with_span(cat(R"("events":[{"name":"e","attributes":[{"key":"k","value":)",
                                          nested_kvlists(65)) + "}]}]");
  REQUIRE_THAT(decode_error(event), Catch::StartsWith(cat(kSpanPath, ".events[0].attributes[0].value.kvlistValue")) &&
                                        Catch::EndsWith("AnyValue nested deeper than 64 arrays and kvlists"));
}

TEST_CASE("decode_json rejects pathologically deep JSON without recursing") {
  const std::string deep_arrays(100000, '[');
  REQUIRE_THAT(decode_error(deep_arrays), Catch::StartsWith("invalid JSON at byte "));
  std::string deep_value = nested_arrays(5000);
  REQUIRE_THAT(value_error(deep_value), Catch::StartsWith("invalid JSON at byte "));
}

// --- enums --------------------------------------------------------------------------------------

TEST_CASE("decode_json accepts span kind and status code as integers or enum names") {
  REQUIRE(first_span(decode_ok(with_span(R"("kind":2)"))).kind() == Span::SPAN_KIND_SERVER);
  REQUIRE(first_span(decode_ok(with_span(R"("kind":"SPAN_KIND_CLIENT")"))).kind() == Span::SPAN_KIND_CLIENT);
  REQUIRE(first_span(decode_ok(with_span(R"("kind":"4")"))).kind() == Span::SPAN_KIND_PRODUCER);
  REQUIRE(static_cast<int>(first_span(decode_ok(with_span(R"("kind":42)"))).kind()) == 42);

  using SpanStatus = opentelemetry::proto::trace::v1::Status;
  REQUIRE(first_span(decode_ok(with_span(R"("status":{"code":"STATUS_CODE_ERROR"})"))).status().code() ==
          SpanStatus::STATUS_CODE_ERROR);
  REQUIRE(first_span(decode_ok(with_span(R"("status":{"code":1})"))).status().code() == SpanStatus::STATUS_CODE_OK);
  REQUIRE(static_cast<int>(first_span(decode_ok(with_span(R"("status":{"code":7})"))).status().code()) == 7);

  REQUIRE(span_error(R"("kind":"SERVER")") ==
          cat(kSpanPath, R"(.kind: unknown span kind "SERVER" (expected an integer or a name such as "SPAN_KIND_SERVER"))"));
  REQUIRE(span_error(R"("status":{"code":"ERROR"})") ==
          cat(kSpanPath, R"(.status.code: unknown status code "ERROR" (expected an integer or a name such as )"
                         R"("STATUS_CODE_ERROR"))"));
  REQUIRE(span_error(R"("kind":1.5)") == cat(kSpanPath, ".kind: expected an integer, got 1.5"));
  REQUIRE(span_error(R"("kind":3000000000)") == cat(kSpanPath, ".kind: out of range for int32, got 3000000000"));
  REQUIRE(span_error(R"("kind":true)") == cat(kSpanPath, ".kind: expected an integer or an enum name, got true"));
}

// --- keys and nulls -----------------------------------------------------------------------------

TEST_CASE("decode_json accepts the snake_case spelling of every field") {
  const std::string snake = to_snake_keys(kFullRequest);
  REQUIRE(snake.find("resource_spans") != std::string::npos);
  REQUIRE(snake.find("dropped_attributes_count") != std::string::npos);
  REQUIRE(snake.find("description_keys") != std::string::npos);
  REQUIRE(snake.find("kvlist_value") != std::string::npos);
  REQUIRE(snake.find("Value") == std::string::npos);
  REQUIRE_SAME_MESSAGE(decode_ok(kFullRequest), decode_ok(snake));
}

TEST_CASE("decode_json ignores unknown keys at every level") {
  const ExportRequest with_unknown = decode_ok(
      R"({"extra":1,"resourceSpans":[{"future":{"a":[1,2]},"scopeSpans":[{"scope":{"name":"s","x":null},"spans":[{)"
      R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"n","newField":"v",)"
      R"("status":{"code":2,"deprecatedCode":1},"events":[{"name":"e","zz":[]}],)"
      R"("attributes":[{"key":"k","value":{"stringValue":"v","type":"string"},"note":1},)"
      R"({"key":"u","value":{"futureValue":{"x":1}}}]}]}]}]})");
  const ExportRequest plain = decode_ok(
      R"({"resourceSpans":[{"scopeSpans":[{"scope":{"name":"s"},"spans":[{)"
      R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"n",)"
      R"("status":{"code":2},"events":[{"name":"e"}],)"
      R"("attributes":[{"key":"k","value":{"stringValue":"v"}},{"key":"u","value":{}}]}]}]}]})");
  REQUIRE_SAME_MESSAGE(plain, with_unknown);
}

TEST_CASE("decode_json treats null fields as not set") {
  REQUIRE(decode_ok(R"({"resourceSpans":null})").resource_spans_size() == 0);
  const ExportRequest request = decode_ok(
      R"({"resourceSpans":[{"resource":null,"schemaUrl":null,"scopeSpans":[{"scope":null,"spans":[{)"
      R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":null,)"
      R"("name":null,"kind":null,"status":null,"events":null,"startTimeUnixNano":null,)"
      R"("attributes":[{"key":"a","value":null},{"key":"b","value":{"stringValue":null}}]}]}]}]})");
  REQUIRE_FALSE(request.resource_spans(0).has_resource());
  REQUIRE_FALSE(request.resource_spans(0).scope_spans(0).has_scope());
  const Span& span = first_span(request);
  REQUIRE(span.parent_span_id().empty());
  REQUIRE(span.name().empty());
  REQUIRE(span.kind() == Span::SPAN_KIND_UNSPECIFIED);
  REQUIRE_FALSE(span.has_status());
  REQUIRE(span.events().empty());
  REQUIRE(span.start_time_unix_nano() == 0);
  REQUIRE_FALSE(span.attributes(0).has_value());
  REQUIRE(span.attributes(1).has_value());
  REQUIRE(span.attributes(1).value().value_case() == AnyValue::VALUE_NOT_SET);

  // Present but empty objects are kept: presence is part of the message.
  const ExportRequest empty_objects = decode_ok(
      R"({"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[{)"
      R"("traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","status":{}}]}]}]})");
  REQUIRE(empty_objects.resource_spans(0).has_resource());
  REQUIRE(empty_objects.resource_spans(0).scope_spans(0).has_scope());
  REQUIRE(first_span(empty_objects).has_status());

  // A null element of a list is not a field, so it is an error.
  REQUIRE(decode_error(R"({"resourceSpans":[{"scopeSpans":[{"spans":[null]}]}]})") ==
          "resourceSpans[0].scopeSpans[0].spans[0]: expected an object, got null");
}

// --- wrong types and invalid JSON ----------------------------------------------------------------

TEST_CASE("decode_json names the path and the expected type when a JSON type is wrong") {
  REQUIRE(decode_error("[]") == "request body: expected a JSON object, got an array");
  REQUIRE(decode_error("\"x\"") == R"(request body: expected a JSON object, got "x")");
  REQUIRE(decode_error(R"({"resourceSpans":{}})") == "resourceSpans: expected an array, got an object");
  REQUIRE(decode_error(R"({"resource_spans":"all"})") == R"(resource_spans: expected an array, got "all")");
  REQUIRE(decode_error(R"({"resourceSpans":[{"scopeSpans":[{"spans":{}}]}]})") ==
          "resourceSpans[0].scopeSpans[0].spans: expected an array, got an object");
  REQUIRE(decode_error(R"({"resourceSpans":[{"resource":"x"}]})") ==
          R"(resourceSpans[0].resource: expected an object, got "x")");
  REQUIRE(decode_error(R"({"resourceSpans":[{"resource":{"attributes":[{"key":"a"},{"key":7}]}}]})") ==
          "resourceSpans[0].resource.attributes[1].key: expected a string, got 7");
  REQUIRE(decode_error(R"({"resourceSpans":[{"scopeSpans":[{"scope":{"name":false}}]}]})") ==
          "resourceSpans[0].scopeSpans[0].scope.name: expected a string, got false");
  REQUIRE(decode_error(R"({"resourceSpans":[{"resource":{"entityRefs":[{"idKeys":["a",1]}]}}]})") ==
          "resourceSpans[0].resource.entityRefs[0].idKeys[1]: expected a string, got 1");
  REQUIRE(span_error(R"("name":42)") == cat(kSpanPath, ".name: expected a string, got 42"));
  REQUIRE(span_error(R"("attributes":["k"])") == cat(kSpanPath, R"(.attributes[0]: expected an object, got "k")"));
  REQUIRE(span_error(R"("attributes":[{"key":"k","value":"v"}])") ==
          cat(kSpanPath, R"(.attributes[0].value: expected an object, got "v")"));
  REQUIRE(span_error(R"("status":[])") == cat(kSpanPath, ".status: expected an object, got an array"));
  REQUIRE(span_error(R"("events":[{"name":"e","attributes":{}}])") ==
          cat(kSpanPath, ".events[0].attributes: expected an array, got an object"));
}

TEST_CASE("decode_json echoes at most 64 bytes of a bad value, cut on a UTF-8 boundary") {
  const std::string long_id(100, 'x');
  const std::string message = decode_error(cat(R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":")", long_id) +
                                           R"(","spanId":"eee19b7ec3c1b174"}]}]}]})");
  REQUIRE(message == cat(kSpanPath, ".traceId: expected 32 hex characters, got \"") + std::string(64, 'x') + "\"...");

  // 63 ASCII bytes then a two-byte character: the cut falls back before it.
  const std::string utf8 = std::string(63, 'a') + "é" + std::string(10, 'b');
  REQUIRE(span_error(cat(R"("kind":")", utf8) + "\"") ==
          cat(kSpanPath, ".kind: unknown span kind \"") + std::string(63, 'a') +
              "\"... (expected an integer or a name such as \"SPAN_KIND_SERVER\")");
}

TEST_CASE("decode_json rejects a field given in both camelCase and snake_case") {
  REQUIRE(span_error(R"("trace_id":"5b8efff798038103d269b633813fc60c")") ==
          cat(kSpanPath, R"(.trace_id: given twice, as "traceId" and "trace_id")"));
}

TEST_CASE("decode_json rejects an AnyValue holding two values") {
  REQUIRE(value_error(R"({"stringValue":"a","intValue":"1"})") ==
          cat(kValuePath, ".intValue: an AnyValue holds one value, but it already has another"));
}

TEST_CASE("decode_json reports invalid JSON with the byte offset and Boost's reason") {
  REQUIRE_THAT(decode_error(""), Catch::StartsWith("invalid JSON at byte 0: "));
  REQUIRE_THAT(decode_error(R"({"resourceSpans":[})"), Catch::StartsWith("invalid JSON at byte 18: "));
  REQUIRE_THAT(decode_error(R"({"resourceSpans":[]} x)"), Catch::StartsWith("invalid JSON at byte 21: "));
  REQUIRE_THAT(decode_error(R"({"resourceSpans":[],})"), Catch::StartsWith("invalid JSON at byte 20: "));
  REQUIRE_THAT(decode_error(R"({/* no comments */})"), Catch::StartsWith("invalid JSON at byte 1: "));
  REQUIRE_THAT(decode_error("{\"a\":\"\xff\"}"), Catch::StartsWith("invalid JSON at byte "));
  REQUIRE(decode_error(R"({"resourceSpans":[}")") != decode_error(""));
  // The reason is Boost's own text.
  REQUIRE(decode_error(R"({"a":1)").size() > std::string_view("invalid JSON at byte 6: ").size());
}

TEST_CASE("decode_json accepts an empty request and surrounding whitespace") {
  REQUIRE(decode_ok("{}").resource_spans_size() == 0);
  REQUIRE(decode_ok(" \n\t{\"resourceSpans\":[]}\r\n ").resource_spans_size() == 0);
}

TEST_CASE("decode_json fills an arena-allocated request") {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<ExportRequest>(&arena);
  const DecodeResult result = decode_json(kFullRequest, *request);
  INFO(result.message);
  REQUIRE(result.ok());
  REQUIRE_SAME_MESSAGE(decode_ok(kFullRequest), *request);
}

// --- encoding -----------------------------------------------------------------------------------

TEST_CASE("encode_json writes lowerCamelCase, lowercase hex ids, integer enums and 64-bit strings") {
  ExportRequest request;
  REQUIRE(encode_json(request) == "{}");

  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string("\x5b\x8e\xff\xf7\x98\x03\x81\x03\xd2\x69\xb6\x33\x81\x3f\xc6\x0c", 16));
  span->set_span_id(std::string("\xee\xe1\x9b\x7e\xc3\xc1\xb1\x74", 8));
  span->set_name("chat");
  span->set_kind(Span::SPAN_KIND_CLIENT);
  span->set_start_time_unix_nano(1);
  span->set_end_time_unix_nano(UINT64_MAX);
  span->set_dropped_events_count(2);
  const auto add = [&](const char* key) -> AnyValue& {
    KeyValue* kv = span->add_attributes();
    kv->set_key(key);
    return *kv->mutable_value();
  };
  add("i").set_int_value(INT64_MIN);
  add("d").set_double_value(0.5);
  add("whole").set_double_value(2.0);
  add("nan").set_double_value(std::numeric_limits<double>::quiet_NaN());
  add("inf").set_double_value(-std::numeric_limits<double>::infinity());
  add("f").set_bool_value(false);
  add("s").set_string_value("");
  add("bytes").set_bytes_value(std::string("\x00\xff", 2));
  add("arr").mutable_array_value();
  add("unset");
  span->add_attributes()->set_key("no_value");
  span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  span->mutable_status()->set_message("boom \"quoted\"\n");

  REQUIRE(encode_json(request) ==
          R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",)"
          R"("spanId":"eee19b7ec3c1b174","name":"chat","kind":3,"startTimeUnixNano":"1",)"
          R"("endTimeUnixNano":"18446744073709551615","attributes":[)"
          R"({"key":"i","value":{"intValue":"-9223372036854775808"}},)"
          R"({"key":"d","value":{"doubleValue":5E-1}},)"
          R"({"key":"whole","value":{"doubleValue":2}},)"
          R"({"key":"nan","value":{"doubleValue":"NaN"}},)"
          R"({"key":"inf","value":{"doubleValue":"-Infinity"}},)"
          R"({"key":"f","value":{"boolValue":false}},)"
          R"({"key":"s","value":{"stringValue":""}},)"
          R"({"key":"bytes","value":{"bytesValue":"AP8="}},)"
          R"({"key":"arr","value":{"arrayValue":{}}},)"
          R"({"key":"unset","value":{}},)"
          R"({"key":"no_value"}],)"
          R"("droppedEventsCount":2,"status":{"message":"boom \"quoted\"\n","code":2}}]}]}]})");
}

TEST_CASE("encode_json writes ExportResponse as {} or as partialSuccess without defaults") {
  ExportResponse response;
  REQUIRE(encode_json(response) == "{}");
  response.mutable_partial_success();
  REQUIRE(encode_json(response) == R"({"partialSuccess":{}})");
  response.mutable_partial_success()->set_rejected_spans(3);
  REQUIRE(encode_json(response) == R"({"partialSuccess":{"rejectedSpans":"3"}})");
  response.mutable_partial_success()->set_error_message("3 spans were dropped by policy");
  REQUIRE(encode_json(response) ==
          R"({"partialSuccess":{"rejectedSpans":"3","errorMessage":"3 spans were dropped by policy"}})");
}

TEST_CASE("encode_json writes RpcStatus with code and message") {
  RpcStatus status;
  status.set_code(3);
  status.set_message(R"(resourceSpans[0].scopeSpans[0].spans[1].traceId: got "AAEC==")");
  REQUIRE(encode_json(status) ==
          R"({"code":3,"message":"resourceSpans[0].scopeSpans[0].spans[1].traceId: got \"AAEC==\""})");
  REQUIRE(encode_json(RpcStatus()) == R"({"code":0,"message":""})");
}

TEST_CASE("encode_json output decodes back to the same request") {
  ExportRequest original;
  auto* rs = original.add_resource_spans();
  rs->set_schema_url("https://opentelemetry.io/schemas/1.26.0");
  auto* resource = rs->mutable_resource();
  resource->set_dropped_attributes_count(UINT32_MAX);
  auto* service = resource->add_attributes();
  service->set_key("service.name");
  service->mutable_value()->set_string_value("koog \xe2\x9c\x93 \x01\x1f control");
  auto* ref = resource->add_entity_refs();
  ref->set_type("service");
  ref->add_id_keys("service.name");
  ref->add_description_keys("service.version");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("ai.koog");
  ss->set_schema_url("s");
  auto* span = ss->add_spans();
  span->set_trace_id(std::string(16, '\0'));
  span->set_span_id(std::string(8, '\xff'));
  span->set_parent_span_id(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  span->set_trace_state("a=b");
  span->set_flags(UINT32_MAX);
  span->set_kind(static_cast<Span::SpanKind>(42));  // unknown values survive
  span->set_start_time_unix_nano(UINT64_MAX);
  span->set_end_time_unix_nano(1);
  span->set_dropped_attributes_count(1);
  span->set_dropped_events_count(2);
  span->set_dropped_links_count(3);
  span->mutable_status()->set_code(static_cast<opentelemetry::proto::trace::v1::Status::StatusCode>(7));

  std::mt19937_64 random(20240611);
  std::uniform_real_distribution<double> uniform(-1e6, 1e6);
  auto* doubles = span->add_attributes();
  doubles->set_key("doubles");
  auto* list = doubles->mutable_value()->mutable_array_value();
  for (int i = 0; i < 500; ++i) list->add_values()->set_double_value(uniform(random));
  for (const double special : {0.1, -0.0, 5e-324, 1.7976931348623157e308, 1e21, 9007199254740993.0, 1e-7,
                               std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    list->add_values()->set_double_value(special);
  }
  auto* ints = span->add_attributes();
  ints->set_key("ints");
  auto* int_list = ints->mutable_value()->mutable_kvlist_value();
  for (const std::int64_t n : {INT64_MIN, std::int64_t{-1}, std::int64_t{0}, INT64_MAX}) {
    auto* kv = int_list->add_values();
    kv->set_key(std::to_string(n));
    kv->mutable_value()->set_int_value(n);
  }
  auto* bytes = span->add_attributes();
  bytes->set_key("bytes");
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
  bytes->mutable_value()->set_bytes_value(all_bytes);
  auto* event = span->add_events();
  event->set_name("exception");
  event->set_time_unix_nano(5);
  event->set_dropped_attributes_count(6);
  auto* link = span->add_links();
  link->set_trace_id(std::string(16, '\x7f'));
  link->set_span_id(std::string(8, '\x80'));
  link->set_flags(1);
  link->set_trace_state("x=y");

  const std::string json = encode_json(original);
  ExportRequest decoded = decode_ok(json);
  REQUIRE_SAME_MESSAGE(original, decoded);
  REQUIRE(std::signbit(first_span(decoded).attributes(0).value().array_value().values(501).double_value()));
  REQUIRE(encode_json(decoded) == json);
}

TEST_CASE("decode_json then encode_json round-trips a document with every field") {
  const ExportRequest first = decode_ok(kFullRequest);
  const std::string encoded = encode_json(first);
  REQUIRE_SAME_MESSAGE(first, decode_ok(encoded));
  REQUIRE(encoded.find("\"traceId\":\"5b8efff798038103d269b633813fc60c\"") != std::string::npos);
  REQUIRE(encoded.find("\"startTimeUnixNano\":\"1730812000000000000\"") != std::string::npos);
  REQUIRE(encoded.find("\"flags\":257") != std::string::npos);
  REQUIRE(encoded.find("\"entityRefs\":[{") != std::string::npos);
}

// --- realistic input ----------------------------------------------------------------------------

TEST_CASE("decode_json reads a Koog agent trace exported as OTLP-JSON") {
  const std::string body = read_data_file("otlp_json/koog_trace.json");
  const ExportRequest request = decode_ok(body);
  REQUIRE(request.resource_spans_size() == 1);
  const auto& rs = request.resource_spans(0);
  REQUIRE(rs.resource().attributes(0).key() == "service.name");
  REQUIRE(rs.resource().attributes(0).value().string_value() == "koog-support-agent");
  REQUIRE(rs.scope_spans(0).scope().name() == "ai.koog");
  const auto& spans = rs.scope_spans(0).spans();
  REQUIRE(spans.size() == 6);

  const Span& root = spans[0];
  REQUIRE(root.name() == "create_agent support-agent");
  REQUIRE(root.parent_span_id().empty());
  REQUIRE(root.has_status());
  REQUIRE(root.flags() == 257);

  const Span& invoke = spans[1];
  REQUIRE(invoke.name() == "invoke_agent support-agent");
  REQUIRE(invoke.parent_span_id() == root.span_id());
  REQUIRE(invoke.links_size() == 1);
  REQUIRE(to_hex(invoke.links(0).trace_id()) == "0af7651916cd43dd8448eb211c80319c");
  REQUIRE(invoke.links(0).attributes(0).value().string_value() == "previous_run");

  const Span& chat = spans[3];
  REQUIRE(chat.name() == "chat gpt-4o");
  REQUIRE(chat.kind() == Span::SPAN_KIND_CLIENT);
  REQUIRE(chat.parent_span_id() == spans[2].span_id());
  const auto attribute = [&](const Span& span, std::string_view key) -> const AnyValue& {
    for (const KeyValue& kv : span.attributes()) {
      if (kv.key() == key) return kv.value();
    }
    FAIL("no attribute " << key);
    return span.attributes(0).value();
  };
  REQUIRE(attribute(chat, "gen_ai.usage.input_tokens").int_value() == 812);
  REQUIRE(attribute(chat, "gen_ai.usage.output_tokens").int_value() == 57);
  REQUIRE(attribute(chat, "gen_ai.request.temperature").double_value() == 0.7);
  REQUIRE(attribute(chat, "gen_ai.response.finish_reasons").array_value().values(0).string_value() == "tool_calls");
  REQUIRE(chat.events_size() == 2);
  REQUIRE(chat.events(1).name() == "gen_ai.choice");
  const AnyValue& message = chat.events(1).attributes(2).value();
  REQUIRE(message.kvlist_value().values(1).key() == "tool_calls");

  const Span& tool = spans[5];
  REQUIRE(tool.name() == "execute_tool get_weather");
  REQUIRE(tool.status().code() == opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
  REQUIRE(tool.status().message() == "Connection refused: weather-api.internal/10.0.4.17:443");
  REQUIRE(tool.events(0).name() == "exception");
  REQUIRE(tool.start_time_unix_nano() == 1730812002171000000ULL);

  REQUIRE_SAME_MESSAGE(request, decode_ok(encode_json(request)));
}

TEST_CASE("a JSON decoding failure says its kind as an error code", "[otlp][json]") {
  ExportRequest request;
  CHECK(decode_json("{\"resourceSpans\": [", request).error ==
        proxy::otlp::DecodeError::invalid_json);
  CHECK(decode_json("{\"resourceSpans\": 3}", request).error ==
        proxy::otlp::DecodeError::invalid_request);
  CHECK(decode_json("{}", request).error == boost::system::error_code{});
}
