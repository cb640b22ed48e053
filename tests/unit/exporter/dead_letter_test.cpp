#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "exporter/dead_letter.hpp"
#include "queue/record_file.hpp"

using proxy::ExperimentRef;
using namespace proxy::exporter;

TEST_CASE("dead letters keep payload, experiment, status and reason", "[exporter][dead-letter]") {
  const auto path = std::filesystem::temp_directory_path() /
                    ("dead-letter-test-" + std::to_string(::getpid()) + ".otlpdl");
  std::filesystem::remove(path);
  {
    DeadLetterWriter writer(path.string());
    std::vector<proxy::queue::QueueItem> items;
    items.push_back({ExperimentRef::by_name("agents"), "payload-1", 3});
    items.push_back({ExperimentRef::by_id("12"), "payload-2", 1});
    REQUIRE(writer.write(items, 400, "MLflow answered 400: bad span"));
    REQUIRE(writer.write({items[0]}, 0, "shutdown"));
  }
  std::string error;
  const auto data = proxy::queue::read_whole_file(path.string(), error);
  REQUIRE(data);
  DeadLetterFile file;
  REQUIRE(parse_dead_letters(*data, file));
  REQUIRE(file.records.size() == 3);
  CHECK(file.records[0].item.payload == "payload-1");
  CHECK(file.records[0].item.experiment == ExperimentRef::by_name("agents"));
  CHECK(file.records[0].item.span_count == 3);
  CHECK(file.records[0].status == 400);
  CHECK(file.records[0].reason == "MLflow answered 400: bad span");
  CHECK(file.records[0].time_unix_ms > 1'600'000'000'000);
  CHECK(file.records[1].item.experiment == ExperimentRef::by_id("12"));
  CHECK(file.records[2].reason == "shutdown");
  CHECK(file.corrupt_records == 0);
  CHECK_FALSE(parse_dead_letters("OMPSPL01", file));
  std::filesystem::remove(path);
}
