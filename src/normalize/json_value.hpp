// JSON text <-> OTLP AnyValue, for values MLflow renders: MLflow decodes an AnyValue into Python
// objects and stores them as JSON, so a key-value list becomes an object it can read messages
// from, while a string holding JSON stays an opaque quoted string.
#pragma once

#include <optional>
#include <string_view>

#include <boost/json/value.hpp>

#include "otlp/types.hpp"

namespace proxy::normalize {

// The JSON text as structure: object -> key-value list, array -> array, string, integer, double,
// bool. nullopt when the text is not JSON, or is JSON null.
std::optional<otlp::AnyValue> parse_json_value(std::string_view text);

// The AnyValue as JSON (bytes as lowercase hex, unset as null).
boost::json::value to_json(const otlp::AnyValue& value);

// OpenTelemetry GenAI messages ([{"role":"User","parts":[{"type":"text","content":"..."}]}],
// roles in any case) as {"messages":[{"role":"user","content":"..."}]}: the chat shape MLflow
// builds its trace previews from (the last user message, the last assistant message).
// nullopt when the text is not such a list or has no text part at all.
std::optional<otlp::AnyValue> chat_preview(std::string_view genai_messages);

// chat_preview's result when it accepts the text, else parse_json_value's: the text parsed once.
// The daemon converts previews with encode_preview_text; this message-built form is the
// reference its tests compare the encoding with.
std::optional<otlp::AnyValue> chat_or_json_value(std::string_view text);

// The encoded forms of the above, which the daemon uses (the preview cache's take(), the wire
// normalizer's content values): the AnyValue's encoding (as SerializeToString writes it), written
// into `out` (replaced) straight from the parsed JSON, without building the message.

// parse_json_value's value, encoded; false (`out` empty) where it gives nullopt.
bool encode_json_value(std::string_view text, std::string& out);

// What a root's preview shows for a candidate's text, encoded: chat_or_json_value's value, except
// that a JSON string, or text that is not JSON (or is JSON null: masked, hashed, plain text), is
// one message of `role` ({"messages":[{"role":role,"content":text}]}).
void encode_preview_text(std::string_view text, std::string_view role, std::string& out);

// What chat_preview would make of the text, read without building it (the preview cache ranks
// every candidate by it, converts only the winner): whether it accepts the text, and whether the
// result has a message of `role` (lower case).
struct ChatSummary {
  bool chat = false;
  bool has_role = false;
};
ChatSummary chat_summary(std::string_view genai_messages, std::string_view role);

}  // namespace proxy::normalize
