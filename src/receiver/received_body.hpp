// A Beast body for the requests the receiver reads: a std::string, as http::string_body, whose
// reader appends each piece of the body. string_body's reader resizes the string first, which
// zero-fills every byte before copying over it: a needless pass over bodies of hundreds of KiB.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/optional.hpp>

namespace proxy::receiver {

struct ReceivedBody {
  using value_type = std::string;

  static std::uint64_t size(const value_type& body) { return body.size(); }

  // Requests are written only by tests and tools; string_body's writer does that.
  using writer = boost::beast::http::string_body::writer;

  class reader {
   public:
    template <bool isRequest, class Fields>
    reader(boost::beast::http::header<isRequest, Fields>&, value_type& body) : body_(body) {}

    // The parser has already held Content-Length to the body limit.
    void init(const boost::optional<std::uint64_t>& length, boost::beast::error_code& ec) {
      ec = {};
      if (length && *length > body_.max_size()) {
        ec = boost::beast::http::error::buffer_overflow;
        return;
      }
      if (length) body_.reserve(static_cast<std::size_t>(*length));
    }

    template <class ConstBufferSequence>
    std::size_t put(const ConstBufferSequence& buffers, boost::beast::error_code& ec) {
      ec = {};
      std::size_t appended = 0;
      try {
        for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
             ++it) {
          const boost::asio::const_buffer piece = *it;
          body_.append(static_cast<const char*>(piece.data()), piece.size());
          appended += piece.size();
        }
      } catch (const std::length_error&) {
        ec = boost::beast::http::error::buffer_overflow;
      }
      return appended;
    }

    void finish(boost::beast::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

}  // namespace proxy::receiver
