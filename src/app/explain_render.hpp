// `otlp-mlflow-proxy explain`, the output: the report as text for a terminal, or as one JSON
// document for scripts (its fields are listed in the README, "See a policy before it ships").
// Pure: the caller prints.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "app/explain_report.hpp"
#include "normalize/normalize.hpp"
#include "otlp/types.hpp"
#include "policy/policy.hpp"

namespace proxy::app::explain {

// What the run reported beside the spans.
struct RunSummary {
  std::string source;                 // the file, or "-" for stdin
  std::string format;                 // "protobuf", "OTLP-JSON", "gzip, OTLP-JSON lines"
  std::size_t requests = 0;
  std::size_t received_spans = 0;     // decoded
  std::size_t rejected_spans = 0;     // invalid: removed by the receiver
  std::vector<std::string> warnings;  // the receiver's partial_success messages
  std::optional<std::string> header;  // the x-mlflow-experiment-id it was routed with
  const policy::PolicyStats* policy = nullptr;  // the router's own counters
  const normalize::NormalizeStats* normalize = nullptr;
};

// The size of a value as the tally shows it: a string's or bytes' length, else the length of
// its JSON text.
std::size_t value_bytes(const otlp::AnyValue& value);

// A value for a terminal: a string quoted and escaped (control characters, C1 controls and bytes
// that are not UTF-8 shown as escapes, so a trace cannot drive the terminal), bytes as 0x and
// hex, anything else as JSON. Over `limit` characters (0: no limit) it is cut on a character
// boundary and ends with "…".
struct DisplayValue {
  std::string text;
  bool shortened = false;
};
DisplayValue display_value(const otlp::AnyValue& value, std::size_t limit);

struct TextOptions {
  std::size_t value_limit = 72;  // characters per value; 0: whole values (--full)
  std::optional<Stage> stage;    // show only this stage's changes (--stage); the tally stays whole
};

std::string render_text(const Report& report, const RunSummary& run, const TextOptions& options);
std::string render_json(const Report& report, const RunSummary& run);

}  // namespace proxy::app::explain
