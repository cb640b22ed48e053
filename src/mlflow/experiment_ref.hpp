// Which MLflow experiment a batch of spans belongs to: a numeric id, or a name that the exporter
// resolves to an id (creating the experiment when allowed). MLflow's vocabulary, used by routing,
// queue and exporter.
// Whether a missing experiment may be created travels with the spans (and through the spool),
// because it is the route's decision, not the exporter's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace proxy {

struct ExperimentRef {
  enum class Kind { id, name };

  Kind kind = Kind::id;
  std::string value = "0";
  bool create = true;  // names only: create the experiment when MLflow does not have it

  static ExperimentRef by_id(std::string id) { return {Kind::id, std::move(id), false}; }
  static ExperimentRef by_name(std::string name, bool create = true) {
    return {Kind::name, std::move(name), create};
  }

  bool operator==(const ExperimentRef&) const = default;

  // The one-byte tag the spool and the dead-letter file store: 0 an id, 1 a name that may be
  // created, 2 a name that must exist (records written before the flag existed read as 1).
  std::uint8_t storage_tag() const { return kind == Kind::id ? 0 : create ? 1 : 2; }
  static std::optional<ExperimentRef> from_storage(std::uint8_t tag, std::string value) {
    switch (tag) {
      case 0: return by_id(std::move(value));
      case 1: return by_name(std::move(value), true);
      case 2: return by_name(std::move(value), false);
      default: return std::nullopt;
    }
  }

  // For logs: `id 12` or `name "koog-agents"`.
  std::string describe() const {
    return kind == Kind::id ? "id " + value : "name \"" + value + "\"";
  }
};

}  // namespace proxy
