#include "exporter/gzip.hpp"

#include <array>
#include <memory>

#include <libdeflate.h>

namespace proxy::exporter {
namespace {

struct CompressorDeleter {
  void operator()(libdeflate_compressor* compressor) const { libdeflate_free_compressor(compressor); }
};
using Compressor = std::unique_ptr<libdeflate_compressor, CompressorDeleter>;

constexpr int kMaxLevel = 12;

// This thread's compressor for `level`, made on first use.
libdeflate_compressor* compressor_for(int level) {
  thread_local std::array<Compressor, kMaxLevel + 1> compressors;
  Compressor& compressor = compressors[static_cast<std::size_t>(level)];
  if (!compressor) compressor.reset(libdeflate_alloc_compressor(level));
  return compressor.get();
}

}  // namespace

std::optional<std::string> gzip_compress(std::string_view input, int level) {
  if (level < 1 || level > kMaxLevel) return std::nullopt;
  libdeflate_compressor* compressor = compressor_for(level);
  if (compressor == nullptr) return std::nullopt;
  std::string out(libdeflate_gzip_compress_bound(compressor, input.size()), '\0');
  const std::size_t written =
      libdeflate_gzip_compress(compressor, input.data(), input.size(), out.data(), out.size());
  if (written == 0) return std::nullopt;  // cannot happen with the bound's space; be safe
  out.resize(written);
  return out;
}

}  // namespace proxy::exporter
