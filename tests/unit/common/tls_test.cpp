#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/tls.hpp"

namespace {

namespace fs = std::filesystem;
namespace ssl = boost::asio::ssl;
using proxy::tls::FileError;

// A file under the test's temporary folder with `content`, removed with the folder.
struct ScratchDir {
  fs::path dir = fs::temp_directory_path() / ("tls_test_" + std::to_string(::getpid()));
  ScratchDir() { fs::create_directories(dir); }
  ~ScratchDir() { fs::remove_all(dir); }
  std::string file(const std::string& name, const std::string& content) const {
    const fs::path path = dir / name;
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }
};

}  // namespace

TEST_CASE("tls: a file that fails to load comes back as a FileError with words naming the "
          "setting and the file", "[common][tls]") {
  const ScratchDir scratch;
  auto context = proxy::tls::make_context(ssl::context::tls_client);

  const std::string missing = (scratch.dir / "missing.pem").string();
  auto error = proxy::tls::load_trusted_cas(*context, missing, "mlflow.tls.ca_file");
  REQUIRE(error);
  CHECK(error->code == FileError::unreadable);
  CHECK(error->code.category() == proxy::tls::file_error_category());
  CHECK(error->message.starts_with("mlflow.tls.ca_file: cannot read \"" + missing + "\""));

  error = proxy::tls::load_trusted_cas(*context, scratch.file("empty.pem", ""), "s");
  REQUIRE(error);
  CHECK(error->code == FileError::empty);

  error = proxy::tls::load_trusted_cas(*context, scratch.file("junk.pem", "not a PEM"), "s");
  REQUIRE(error);
  CHECK(error->code == FileError::no_ca);
  CHECK(error->message.find("holds no usable CA certificate") != std::string::npos);

  const std::string junk = scratch.file("cert.pem", "not a PEM");
  error = proxy::tls::load_certificate_and_key(*context, junk, "cert", junk, "key");
  REQUIRE(error);
  CHECK(error->code == FileError::no_certificate);
  CHECK(error->message.starts_with("cert: "));
}

TEST_CASE("tls: each FileError has its own message in the category", "[common][tls]") {
  for (const FileError error : {FileError::unreadable, FileError::empty, FileError::no_ca,
                                FileError::no_certificate, FileError::no_private_key,
                                FileError::key_mismatch}) {
    const boost::system::error_code code = error;
    CHECK_FALSE(code.message().empty());
    CHECK(code.message().find("tls file error") == std::string::npos);
  }
}
