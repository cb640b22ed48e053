// A Beast body that sends a request from buffers it does not own: the exporter's batch is the
// concatenation of queued payloads (each one or more serialized resource_spans fields), so the
// body is written straight from the queue's bytes with one gathered write instead of being
// copied into one string first. The caller keeps the bytes alive until the write completes.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/optional.hpp>

namespace proxy::exporter {

struct SlicesBody {
  using value_type = std::vector<boost::asio::const_buffer>;

  static std::uint64_t size(const value_type& slices) {
    return boost::asio::buffer_size(slices);
  }

  // Hands all the slices to the stream in one get(): Beast writes them with the header as one
  // gathered write.
  class writer {
   public:
    using const_buffers_type = value_type;

    template <bool isRequest, class Fields>
    writer(const boost::beast::http::header<isRequest, Fields>&, const value_type& slices)
        : slices_(slices) {}

    void init(boost::beast::error_code& ec) { ec = {}; }

    boost::optional<std::pair<const_buffers_type, bool>> get(boost::beast::error_code& ec) {
      ec = {};
      if (done_) return boost::none;
      done_ = true;
      return {{slices_, false}};
    }

   private:
    const value_type& slices_;
    bool done_ = false;
  };
};

}  // namespace proxy::exporter
