// MLflow's version as its `GET /version` reports it (a PEP 440 string such as "3.7.0",
// "3.7.0rc0" or "3.8.0.dev0"), and what the proxy derives from it: whether /v1/traces decodes a
// gzip request body. MLflow 3.6.0 reads the raw body as protobuf and answers 400 to gzip; 3.7.0
// decompresses gzip and deflate (mlflow/mlflow PR 19024, merged after 3.6 was released).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace proxy::exporter {

struct MlflowVersion {
  // PEP 440 order within one release: dev < a < b < rc < final (post releases count as final).
  enum class Stage { dev, alpha, beta, release_candidate, final };

  unsigned major = 0;
  unsigned minor = 0;
  unsigned patch = 0;
  Stage stage = Stage::final;
  unsigned stage_number = 0;  // rc1 -> 1, .dev0 -> 0
  std::string text;           // as MLflow reported it, trimmed

  // -1, 0, 1 by PEP 440 order of release and pre-release (the text is not compared).
  int compare(const MlflowVersion& other) const;
};

// nullopt unless `text` (surrounding whitespace ignored) is MAJOR.MINOR[.PATCH] optionally followed
// by aN, bN, rcN, .devN or .postN (a local "+..." suffix is allowed and ignored). Anything else,
// such as an HTML page from a router in front of MLflow, is not a version.
std::optional<MlflowVersion> parse_mlflow_version(std::string_view text);

// The first release whose /v1/traces accepts Content-Encoding: gzip is 3.7.0. Its pre-releases
// (3.7.0rc0) count; dev builds of 3.7.0 (3.7.0.dev0, from master before the change) do not.
bool mlflow_accepts_gzip(const MlflowVersion& version);

}  // namespace proxy::exporter
