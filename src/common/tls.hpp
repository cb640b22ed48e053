// OpenSSL contexts from PEM files, shared by the TLS client to MLflow and the OTLP/HTTP listener:
// every problem with a file comes back in words that name the setting and the file, so a bad
// file fails the start (and --check-config) clearly instead of the first handshake.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

namespace proxy::tls {

// A client or server context that speaks TLS 1.2 and 1.3 only and never asks a terminal for a
// key's passphrase (an encrypted key fails to load instead).
std::shared_ptr<boost::asio::ssl::context> make_context(boost::asio::ssl::context::method method);

// What is wrong with a PEM file a setting names, as an error code of its own category.
enum class FileError { unreadable = 1, empty, no_ca, no_certificate, no_private_key, key_mismatch };
const boost::system::error_category& file_error_category();
inline boost::system::error_code make_error_code(FileError error) {
  return {static_cast<int>(error), file_error_category()};
}

// A file that failed to load: the kind (a FileError) and the words for the operator, starting
// with the setting ("mlflow.tls.ca_file: cannot read \"/x\": No such file or directory").
struct LoadError {
  boost::system::error_code code;
  std::string message;
};

// Each returns nothing on success, else what is wrong.

// Trusted CAs from a PEM bundle, or from a directory of hashed certificates (c_rehash), as
// Python's requests accepts for MLFLOW_TRACKING_SERVER_CERT_PATH.
std::optional<LoadError> load_trusted_cas(boost::asio::ssl::context& context,
                                          const std::string& path, std::string_view setting);

// The certificate chain and its private key; `key_path` may be the certificate's own file.
std::optional<LoadError> load_certificate_and_key(boost::asio::ssl::context& context,
                                                  const std::string& cert_path,
                                                  std::string_view cert_setting,
                                                  const std::string& key_path,
                                                  std::string_view key_setting);

// Why a client handshake failed, in words: the certificate check's verdict when verification
// failed ("certificate verify failed: Hostname mismatch"), else the TLS error itself.
std::string describe_handshake_error(const boost::system::error_code& error, long verify_result);

// True when OpenSSL saw an HTTP request where a TLS ClientHello should be (plaintext client on
// a TLS port).
bool is_plain_http_request(const boost::system::error_code& error);

}  // namespace proxy::tls

template <>
struct boost::system::is_error_code_enum<proxy::tls::FileError> : std::true_type {};
