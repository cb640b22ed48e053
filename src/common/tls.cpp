#include "common/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509err.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <boost/asio/ssl/error.hpp>

namespace proxy::tls {

namespace ssl = boost::asio::ssl;

namespace {

std::string quoted(const std::string& path) { return "\"" + path + "\""; }

// Opening the file first gives "No such file or directory" or "Permission denied", which
// OpenSSL's own messages ("system library") do not.
std::string unreadable(const std::string& path, std::string_view setting) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return {};
  std::ifstream file(path, std::ios::binary);
  if (file) {
    if (file.peek() == std::ifstream::traits_type::eof()) {
      return std::string(setting) + ": " + quoted(path) + " is empty";
    }
    return {};
  }
  return std::string(setting) + ": cannot read " + quoted(path) + ": " + std::strerror(errno);
}

}  // namespace

std::shared_ptr<ssl::context> make_context(ssl::context::method method) {
  auto context = std::make_shared<ssl::context>(method);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  // Without a callback OpenSSL prompts on the terminal for an encrypted key's passphrase, and a
  // daemon would hang at start.
  context->set_password_callback([](std::size_t, ssl::context::password_purpose) { return std::string(); });
  return context;
}

std::string load_trusted_cas(ssl::context& context, const std::string& path, std::string_view setting) {
  if (std::string error = unreadable(path, setting); !error.empty()) return error;
  boost::system::error_code ec;
  std::error_code fs_ec;
  if (std::filesystem::is_directory(path, fs_ec)) {
    context.add_verify_path(path, ec);
  } else {
    context.load_verify_file(path, ec);
  }
  if (ec) {
    return std::string(setting) + ": " + quoted(path) + " holds no usable CA certificate (PEM): " +
           ec.message();
  }
  return {};
}

std::string load_certificate_and_key(ssl::context& context, const std::string& cert_path,
                                     std::string_view cert_setting, const std::string& key_path,
                                     std::string_view key_setting) {
  if (std::string error = unreadable(cert_path, cert_setting); !error.empty()) return error;
  boost::system::error_code ec;
  context.use_certificate_chain_file(cert_path, ec);
  if (ec) {
    return std::string(cert_setting) + ": " + quoted(cert_path) +
           " holds no usable certificate (PEM): " + ec.message();
  }
  if (std::string error = unreadable(key_path, key_setting); !error.empty()) return error;
  context.use_private_key_file(key_path, ssl::context::pem, ec);
  if (ec && ec.category() == boost::asio::error::get_ssl_category() &&
      ERR_GET_LIB(static_cast<unsigned long>(ec.value())) == ERR_LIB_X509 &&
      ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH) {
    return std::string(key_setting) + ": the private key in " + quoted(key_path) +
           " does not match the certificate in " + quoted(cert_path);
  }
  if (ec) {
    // The file's content is never quoted: it is a secret.
    return std::string(key_setting) + ": " + quoted(key_path) +
           " holds no usable private key (PEM, unencrypted): " + ec.message();
  }
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    ERR_clear_error();
    return std::string(key_setting) + ": the private key in " + quoted(key_path) +
           " does not match the certificate in " + quoted(cert_path);
  }
  return {};
}

std::string describe_handshake_error(const boost::system::error_code& error, long verify_result) {
  if (verify_result != X509_V_OK) {
    return "certificate verify failed: " + std::string(X509_verify_cert_error_string(verify_result));
  }
  if (error == ssl::error::stream_truncated) return "the server closed the connection during the handshake";
  return error.message();
}

bool is_plain_http_request(const boost::system::error_code& error) {
  return error.category() == boost::asio::error::get_ssl_category() &&
         ERR_GET_REASON(static_cast<unsigned long>(error.value())) == SSL_R_HTTP_REQUEST;
}

}  // namespace proxy::tls
