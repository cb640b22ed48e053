// OpenSSL contexts from PEM files, shared by the TLS client to MLflow and the OTLP/HTTP listener:
// every problem with a file comes back in words that name the setting and the file, so a bad
// file fails the start (and --check-config) clearly instead of the first handshake.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ssl/context.hpp>
#include <boost/system/error_code.hpp>

namespace proxy::tls {

// A client or server context that speaks TLS 1.2 and 1.3 only and never asks a terminal for a
// key's passphrase (an encrypted key fails to load instead).
std::shared_ptr<boost::asio::ssl::context> make_context(boost::asio::ssl::context::method method);

// Each returns "" on success, else what is wrong, starting with `setting`
// ("mlflow.tls.ca_file: cannot read \"/x\": No such file or directory").

// Trusted CAs from a PEM bundle, or from a directory of hashed certificates (c_rehash), as
// Python's requests accepts for MLFLOW_TRACKING_SERVER_CERT_PATH.
std::string load_trusted_cas(boost::asio::ssl::context& context, const std::string& path,
                             std::string_view setting);

// The certificate chain and its private key; `key_path` may be the certificate's own file.
std::string load_certificate_and_key(boost::asio::ssl::context& context,
                                     const std::string& cert_path, std::string_view cert_setting,
                                     const std::string& key_path, std::string_view key_setting);

// Why a client handshake failed, in words: the certificate check's verdict when verification
// failed ("certificate verify failed: Hostname mismatch"), else the TLS error itself.
std::string describe_handshake_error(const boost::system::error_code& error, long verify_result);

// True when OpenSSL saw an HTTP request where a TLS ClientHello should be (plaintext client on
// a TLS port).
bool is_plain_http_request(const boost::system::error_code& error);

}  // namespace proxy::tls
