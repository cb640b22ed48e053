#include <catch2/catch.hpp>

#include <zlib.h>

#include "exporter/gzip.hpp"
#include "exporter/mlflow_version.hpp"
#include "exporter/upstream_health.hpp"
#include "exporter/upstream_version.hpp"

using namespace proxy::exporter;
using Stage = MlflowVersion::Stage;

namespace {

MlflowVersion parsed(std::string_view text) {
  const auto version = parse_mlflow_version(text);
  INFO(text);
  REQUIRE(version.has_value());
  return *version;
}

bool gzip_for(std::string_view text) { return mlflow_accepts_gzip(parsed(text)); }

std::string gunzip(const std::string& data) {
  z_stream stream{};
  REQUIRE(inflateInit2(&stream, 15 + 16) == Z_OK);
  std::string out(1 << 20, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = inflate(&stream, Z_FINISH);
  out.resize(stream.total_out);
  inflateEnd(&stream);
  REQUIRE(result == Z_STREAM_END);
  return out;
}

}  // namespace

TEST_CASE("MLflow version strings parse as PEP 440 releases", "[exporter][version]") {
  const MlflowVersion v360 = parsed("3.6.0");
  CHECK(v360.major == 3);
  CHECK(v360.minor == 6);
  CHECK(v360.patch == 0);
  CHECK(v360.stage == Stage::final);
  CHECK(v360.text == "3.6.0");

  const MlflowVersion rc = parsed("3.7.0rc1");
  CHECK(rc.minor == 7);
  CHECK(rc.stage == Stage::release_candidate);
  CHECK(rc.stage_number == 1);

  const MlflowVersion v3102 = parsed("3.10.2\n");  // /version ends without a newline; tolerate one
  CHECK(v3102.minor == 10);
  CHECK(v3102.patch == 2);
  CHECK(v3102.text == "3.10.2");

  const MlflowVersion dev = parsed("3.8.0.dev0");
  CHECK(dev.stage == Stage::dev);
  CHECK(parsed("3.7").patch == 0);
  CHECK(parsed("3.7.1a2").stage == Stage::alpha);
  CHECK(parsed("3.7.1b3").stage == Stage::beta);
  CHECK(parsed("3.7.0.post1").stage == Stage::final);
  CHECK(parsed("3.7.0+databricks.1").minor == 7);
  CHECK(parsed("3.7.0rc1.dev2").stage == Stage::dev);
}

TEST_CASE("versions compare in release order, pre-releases before the release", "[exporter][version]") {
  CHECK(parsed("3.6.0").compare(parsed("3.7.0")) < 0);
  CHECK(parsed("3.10.2").compare(parsed("3.9.9")) > 0);  // numeric, not text, order
  CHECK(parsed("3.7.0.dev0").compare(parsed("3.7.0a1")) < 0);
  CHECK(parsed("3.7.0a1").compare(parsed("3.7.0b1")) < 0);
  CHECK(parsed("3.7.0b1").compare(parsed("3.7.0rc0")) < 0);
  CHECK(parsed("3.7.0rc0").compare(parsed("3.7.0rc1")) < 0);
  CHECK(parsed("3.7.0rc1").compare(parsed("3.7.0")) < 0);
  CHECK(parsed("3.7").compare(parsed("3.7.0")) == 0);
  CHECK(parsed("3.7.0").compare(parsed("3.7.0.post1")) == 0);
  CHECK(parsed("4.0.0").compare(parsed("3.99.99")) > 0);
}

TEST_CASE("gzip only for MLflow 3.7 and newer", "[exporter][version]") {
  CHECK_FALSE(gzip_for("3.6.0"));
  CHECK_FALSE(gzip_for("3.6.5"));
  CHECK_FALSE(gzip_for("2.22.1"));
  CHECK_FALSE(gzip_for("3.7.0.dev0"));  // master before the change (mlflow/mlflow PR 19024)
  CHECK(gzip_for("3.7.0rc0"));
  CHECK(gzip_for("3.7.0rc1"));
  CHECK(gzip_for("3.7.0"));
  CHECK(gzip_for("3.10.2"));
  CHECK(gzip_for("3.17.2"));
  CHECK(gzip_for("3.18.0.dev0"));
  CHECK(gzip_for("4.0.0"));
}

TEST_CASE("anything but a version is no version", "[exporter][version]") {
  for (const char* text :
       {"", "   ", "3", "3.", ".7", "3.x", "v3.7.0", "3.7.0-rc1", "3.7.0rc", "3.7.0.dev",
        "3.7.0 extra", "<!doctype html><html><body>MLflow</body></html>", "{\"version\": \"3.7.0\"}",
        "3.7.0+", "3.7.0+local/bad", "99999999999.1.0", "3.7.0.1"}) {
    INFO(text);
    CHECK_FALSE(parse_mlflow_version(text).has_value());
  }
  CHECK_FALSE(parse_mlflow_version(std::string(100, '3')).has_value());
}

TEST_CASE("gzip is off until the version is read and from the start of an outage",
          "[exporter][version]") {
  UpstreamHealth health;
  UpstreamVersion version;
  CHECK(version.needs_reading(health.outages()));
  CHECK_FALSE(version.gzip_ok(health.outages()));

  version.record("3.7.0", true, health.outages());
  CHECK_FALSE(version.needs_reading(health.outages()));
  CHECK(version.gzip_ok(health.outages()));
  CHECK(version.snapshot().version == "3.7.0");

  health.record_unreachable("connection refused");
  health.record_unreachable("connection refused again");  // one outage, however many failures
  CHECK(health.outages() == 1);
  CHECK_FALSE(version.gzip_ok(health.outages()));
  CHECK(version.needs_reading(health.outages()));
  CHECK(version.snapshot().version == "3.7.0");  // still shown until read again

  health.record_accepting();
  version.record("3.6.0", false, health.outages());  // downgraded meanwhile
  CHECK_FALSE(version.gzip_ok(health.outages()));
  CHECK_FALSE(version.needs_reading(health.outages()));

  version.record("3.8.0", true, health.outages());
  version.forget();  // a gzip body refused
  CHECK_FALSE(version.gzip_ok(health.outages()));
  CHECK(version.needs_reading(health.outages()));
  CHECK_FALSE(version.snapshot().gzip);
  // Read again: the same version stays without gzip; another one (an upgrade) gets it back.
  CHECK_FALSE(version.record("3.8.0", true, health.outages()));
  CHECK_FALSE(version.gzip_ok(health.outages()));
  CHECK_FALSE(version.needs_reading(health.outages()));
  CHECK(version.record("3.9.0", true, health.outages()));
  CHECK(version.gzip_ok(health.outages()));
}

TEST_CASE("gzip bodies decompress to the input", "[exporter][gzip]") {
  std::string input;
  for (int i = 0; i < 2000; ++i) input += "span " + std::to_string(i) + " attributes; ";
  const auto compressed = gzip_compress(input);
  REQUIRE(compressed.has_value());
  CHECK(compressed->size() < input.size() / 3);
  CHECK(static_cast<unsigned char>((*compressed)[0]) == 0x1f);  // gzip magic, not a zlib header
  CHECK(static_cast<unsigned char>((*compressed)[1]) == 0x8b);
  CHECK(gunzip(*compressed) == input);
  const auto empty = gzip_compress("");
  REQUIRE(empty.has_value());
  CHECK(gunzip(*empty).empty());
  // Every level libdeflate knows, and none it does not.
  for (int level = 1; level <= 12; ++level) {
    const auto at_level = gzip_compress(input, level);
    REQUIRE(at_level.has_value());
    CHECK(gunzip(*at_level) == input);
  }
  CHECK_FALSE(gzip_compress(input, 0).has_value());
  CHECK_FALSE(gzip_compress(input, 13).has_value());
}
