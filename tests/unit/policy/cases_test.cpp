// Runs every case of tests/data/policy/cases.yaml; the policy of each case goes through the real
// config loader, so the file also pins the YAML schema of policies.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "config/load.hpp"
#include "policy/policy.hpp"
#include "support.hpp"

using namespace proxy;
using namespace proxy::policy;
using namespace proxy::policy::test;

namespace {

config::PolicyConfig load_policy(const YAML::Node& policy) {
  // Default-initialized, not `Config{}`: see kDefaultConfig in tests/unit/config/config_test.cpp.
  static const config::Config defaults;
  if (!policy) return *config::find_policy(defaults, "default");
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "policies" << YAML::Value << YAML::BeginMap << YAML::Key
      << "case" << YAML::Value << policy << YAML::EndMap << YAML::EndMap;
  const auto path = std::filesystem::temp_directory_path() /
                    ("policy-case-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << out.c_str();
  const config::LoadedConfig loaded = config::load({"--config", path.string()}, {});
  std::filesystem::remove(path);
  return loaded.config.policies.at(0).policy;
}

}  // namespace

TEST_CASE("table-driven policy cases (tests/data/policy/cases.yaml)", "[policy][cases]") {
  const YAML::Node cases = YAML::LoadFile(PROXY_TEST_DATA_DIR "/policy/cases.yaml");
  REQUIRE(cases.IsSequence());
  REQUIRE(cases.size() >= 40);
  for (const YAML::Node& c : cases) {
    const std::string name = c["name"].as<std::string>();
    INFO("case: " << name);
    const CompiledPolicy policy{load_policy(c["policy"])};
    const std::string key = c["key"].as<std::string>();
    const std::string value = c["value"].as<std::string>();
    const bool expect_gone = !c["expect"] || c["expect"].IsNull();

    OneSpan one;
    Attributes* attributes = &one.attributes();
    if (c["event"]) {
      auto* event = one.span->add_events();
      event->set_name(c["event"].as<std::string>());
      attributes = event->mutable_attributes();
    }
    const bool status = c["status"] && c["status"].as<bool>();
    if (status) {
      one.span->mutable_status()->set_message(value);
    } else {
      set(*attributes, key, text(value));
    }
    PolicyTally tally;
    apply(policy, one.resource_spans, tally);

    if (status) {
      CHECK(one.span->status().message() == c["expect"].as<std::string>());
    } else if (expect_gone) {
      CHECK(find(*attributes, key) == nullptr);
    } else {
      const AnyValue* got = find(*attributes, key);
      REQUIRE(got != nullptr);
      CHECK(got->string_value() == c["expect"].as<std::string>());
    }
  }
}
