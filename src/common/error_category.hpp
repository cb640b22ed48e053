// One boost::system error category per enum of error kinds. A stage names its enum and the
// words for each kind; the category class itself is written once, here.
#pragma once

#include <boost/system/error_category.hpp>

#include <string>
#include <string_view>

namespace proxy::common {

// Boost's error_category has a protected non-virtual destructor by design (categories are
// statics, never deleted through a base pointer), which -Wnon-virtual-dtor flags in subclasses.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
template <typename Enum>
class EnumErrorCategory final : public boost::system::error_category {
 public:
  // `describe` returns the words for a kind, or an empty view for a value outside the enum.
  using Describe = std::string_view (*)(Enum);

  EnumErrorCategory(const char* name, Describe describe) : name_(name), describe_(describe) {}

  const char* name() const noexcept override { return name_; }

  std::string message(int value) const override {
    const std::string_view words = describe_(static_cast<Enum>(value));
    if (words.empty()) return std::string(name_) + " error " + std::to_string(value);
    return std::string(words);
  }

 private:
  const char* name_;
  Describe describe_;
};
#pragma GCC diagnostic pop

}  // namespace proxy::common
