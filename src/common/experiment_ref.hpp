// Which MLflow experiment a batch of spans belongs to: a numeric id, or a name that the exporter
// resolves to an id (creating the experiment when allowed). Shared by routing, queue and exporter.
#pragma once

#include <string>

namespace proxy {

struct ExperimentRef {
  enum class Kind { id, name };

  Kind kind = Kind::id;
  std::string value = "0";

  static ExperimentRef by_id(std::string id) { return {Kind::id, std::move(id)}; }
  static ExperimentRef by_name(std::string name) { return {Kind::name, std::move(name)}; }

  bool operator==(const ExperimentRef&) const = default;

  // For logs: `id 12` or `name "koog-agents"`.
  std::string describe() const {
    return kind == Kind::id ? "id " + value : "name \"" + value + "\"";
  }
};

}  // namespace proxy
