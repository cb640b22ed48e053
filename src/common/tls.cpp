#include "common/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509err.h>
#include <openssl/x509_vfy.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include <boost/asio/ssl/error.hpp>

#include "common/error_category.hpp"

namespace proxy::tls {

namespace ssl = boost::asio::ssl;

namespace {

std::string_view describe(FileError error) {
  switch (error) {
    case FileError::unreadable: return "cannot read the file";
    case FileError::empty: return "the file is empty";
    case FileError::no_ca: return "no usable CA certificate";
    case FileError::no_certificate: return "no usable certificate";
    case FileError::no_private_key: return "no usable private key";
    case FileError::key_mismatch: return "the private key does not match the certificate";
  }
  return {};
}

std::string quoted(const std::string& path) { return "\"" + path + "\""; }

LoadError load_error(FileError code, std::string message) {
  return {make_error_code(code), std::move(message)};
}

// Opening the file first gives "No such file or directory" or "Permission denied", which
// OpenSSL's own messages ("system library") do not.
std::optional<LoadError> unreadable(const std::string& path, std::string_view setting) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return std::nullopt;
  std::ifstream file(path, std::ios::binary);
  if (!file) {
    return load_error(FileError::unreadable, std::string(setting) + ": cannot read " +
                                                 quoted(path) + ": " + std::strerror(errno));
  }
  if (file.peek() == std::ifstream::traits_type::eof()) {
    return load_error(FileError::empty, std::string(setting) + ": " + quoted(path) + " is empty");
  }
  return std::nullopt;
}

bool is_key_mismatch(const boost::system::error_code& ec) {
  return ec.category() == boost::asio::error::get_ssl_category() &&
         ERR_GET_LIB(static_cast<unsigned long>(ec.value())) == ERR_LIB_X509 &&
         ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH;
}

LoadError key_mismatch(const std::string& cert_path, const std::string& key_path,
                       std::string_view key_setting) {
  return load_error(FileError::key_mismatch, std::string(key_setting) + ": the private key in " +
                                                 quoted(key_path) +
                                                 " does not match the certificate in " +
                                                 quoted(cert_path));
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

const boost::system::error_category& file_error_category() {
  static const common::EnumErrorCategory<FileError> category("tls file", describe);
  return category;
}

std::optional<LoadError> load_trusted_cas(ssl::context& context, const std::string& path,
                                          std::string_view setting) {
  if (auto error = unreadable(path, setting)) return error;
  boost::system::error_code ec;
  std::error_code fs_ec;
  if (std::filesystem::is_directory(path, fs_ec)) {
    context.add_verify_path(path, ec);
  } else {
    context.load_verify_file(path, ec);
  }
  if (ec) {
    return load_error(FileError::no_ca, std::string(setting) + ": " + quoted(path) +
                                            " holds no usable CA certificate (PEM): " +
                                            ec.message());
  }
  return std::nullopt;
}

std::optional<LoadError> load_certificate_and_key(ssl::context& context,
                                                  const std::string& cert_path,
                                                  std::string_view cert_setting,
                                                  const std::string& key_path,
                                                  std::string_view key_setting) {
  if (auto error = unreadable(cert_path, cert_setting)) return error;
  boost::system::error_code ec;
  context.use_certificate_chain_file(cert_path, ec);
  if (ec) {
    return load_error(FileError::no_certificate, std::string(cert_setting) + ": " +
                                                     quoted(cert_path) +
                                                     " holds no usable certificate (PEM): " +
                                                     ec.message());
  }
  if (auto error = unreadable(key_path, key_setting)) return error;
  context.use_private_key_file(key_path, ssl::context::pem, ec);
  if (is_key_mismatch(ec)) return key_mismatch(cert_path, key_path, key_setting);
  if (ec) {
    // The file's content is never quoted: it is a secret.
    return load_error(FileError::no_private_key, std::string(key_setting) + ": " +
                                                     quoted(key_path) +
                                                     " holds no usable private key (PEM, "
                                                     "unencrypted): " + ec.message());
  }
  if (SSL_CTX_check_private_key(context.native_handle()) != 1) {
    ERR_clear_error();
    return key_mismatch(cert_path, key_path, key_setting);
  }
  return std::nullopt;
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
