#include <catch2/catch.hpp>

#include "common/glob.hpp"

using proxy::glob_match;
using proxy::GlobTable;

TEST_CASE("glob: '*' spans dots, '?' is one byte, the rest is literal", "[common][glob]") {
  CHECK(glob_match("llm.input_messages.*", "llm.input_messages.0.message.content"));
  CHECK_FALSE(glob_match("llm.input_messages.*", "llm.input_messages"));
  CHECK(glob_match("*", ""));
  CHECK(glob_match("gen_ai.*.messages", "gen_ai.input.messages"));
  CHECK(glob_match("a?c", "abc"));
  CHECK_FALSE(glob_match("a?c", "ac"));
  CHECK_FALSE(glob_match("team-a", "team-ab"));
  CHECK(glob_match("*-prod-*", "agents-prod-eu"));
  CHECK_FALSE(glob_match("*-prod-*", "agents-staging-eu"));
  CHECK(glob_match("**a**b", "xxaxxbxb"));
}

TEST_CASE("a glob table finds literal keys first, then prefixes, then other globs", "[common][glob]") {
  GlobTable table;
  CHECK(table.empty());
  table.add("gen_ai.*.messages", 3);
  table.add("gen_ai.*", 2);
  table.add("gen_ai.input.messages", 1);
  REQUIRE(table.find("gen_ai.input.messages") != nullptr);
  CHECK(*table.find("gen_ai.input.messages") == 1);
  CHECK(*table.find("gen_ai.output.messages") == 2);
  CHECK(table.find("koog.node.input") == nullptr);
  CHECK_FALSE(table.empty());
}
