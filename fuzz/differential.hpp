// How the differential harnesses (and the unit tests that hold the wire path against the message
// path) compare two protobuf outputs: parsed, then field by field with MessageDifferencer, so a
// difference names the field instead of a byte offset.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>
#include <google/protobuf/util/message_differencer.h>

namespace proxy::fuzz {

// What the two sides are called in a description.
struct Sides {
  std::string_view expected = "the expected message";
  std::string_view actual = "the actual message";
};

// Every harness holds the wire path against the message path.
inline constexpr Sides kMessageVsWire{"the message path's output", "the wire path's output"};

// Enough of the differencer's report to find the field; a flood helps nobody.
inline constexpr std::size_t kReportLimit = 2000;

// Nullopt when the messages are equal, else the differencer's report (expected on the left).
inline std::optional<std::string> message_difference(const google::protobuf::Message& expected,
                                                     const google::protobuf::Message& actual) {
  google::protobuf::util::MessageDifferencer differencer;
  std::string report;
  differencer.ReportDifferencesToString(&report);
  if (differencer.Compare(expected, actual)) return std::nullopt;
  if (report.size() > kReportLimit) {
    const std::size_t cut = report.size() - kReportLimit;
    report.resize(kReportLimit);
    report += "... (" + std::to_string(cut) + " more characters)";
  }
  return report;
}

// Nullopt when `actual` parses into a message equal to `expected`, else what is wrong.
template <typename Message>
std::optional<std::string> parsed_difference(const Message& expected, std::string_view actual, Sides sides = {}) {
  Message parsed;
  if (!parsed.ParseFromArray(actual.data(), static_cast<int>(actual.size()))) {
    return std::string(sides.actual) + " does not parse";
  }
  return message_difference(expected, parsed);
}

// Nullopt when both sides parse as Message and are equal, else which side does not parse or the
// differencer's report.
template <typename Message>
std::optional<std::string> parsed_difference(std::string_view expected, std::string_view actual, Sides sides = {}) {
  Message parsed;
  if (!parsed.ParseFromArray(expected.data(), static_cast<int>(expected.size()))) {
    return std::string(sides.expected) + " does not parse";
  }
  return parsed_difference(parsed, actual, sides);
}

}  // namespace proxy::fuzz
