#include "common/error_category.hpp"

#include <catch2/catch.hpp>

#include <boost/system/error_code.hpp>

namespace {

enum class Fault { stuck = 1, burnt };

std::string_view describe(Fault fault) {
  switch (fault) {
    case Fault::stuck: return "the part is stuck";
    case Fault::burnt: return "the part burnt out";
  }
  return {};
}

const boost::system::error_category& fault_category() {
  static const proxy::common::EnumErrorCategory<Fault> category("test fault", describe);
  return category;
}

}  // namespace

TEST_CASE("an enum's error category names itself and describes each kind") {
  const boost::system::error_code stuck(static_cast<int>(Fault::stuck), fault_category());
  CHECK(std::string(stuck.category().name()) == "test fault");
  CHECK(stuck.message() == "the part is stuck");
  CHECK(boost::system::error_code(2, fault_category()).message() == "the part burnt out");
}

TEST_CASE("a value outside the enum reads as the category's name and the number") {
  CHECK(boost::system::error_code(7, fault_category()).message() == "test fault error 7");
}

TEST_CASE("codes of two categories with the same value differ") {
  const boost::system::error_code ours(1, fault_category());
  CHECK(ours != boost::system::error_code(1, boost::system::generic_category()));
  CHECK(ours == boost::system::error_code(1, fault_category()));
}
