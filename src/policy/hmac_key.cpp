#include "policy/hmac_key.hpp"

#include <cstdlib>
#include <fstream>
#include <iterator>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace proxy::policy {
namespace {

constexpr char kHex[] = "0123456789abcdef";

void append_hex(std::string& out, const unsigned char* bytes, unsigned length, unsigned prefix) {
  for (unsigned i = 0; i < length && 2 * i < prefix; ++i) {
    out += kHex[bytes[i] >> 4];
    if (2 * i + 1 < prefix) out += kHex[bytes[i] & 0x0f];
  }
}

// The file's bytes without trailing newlines (a key written by `openssl rand -hex 32 > key`).
std::string read_key_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw config::ConfigError("hmac key_file " + path + ": cannot be read");
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  return key;
}

void wipe(std::string& text) {
  if (!text.empty()) OPENSSL_cleanse(text.data(), text.size());
}

bool is_hmac(config::PolicyMode mode) { return mode == config::PolicyMode::hmac; }

}  // namespace

HmacKey::HmacKey(std::string_view key) : key_(key.begin(), key.end()) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(key_.data(), key_.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw config::ConfigError("hmac: SHA-256 is not available from libcrypto");
  }
  append_hex(id_, digest, length, 8);
}

HmacKey::~HmacKey() {
  if (!key_.empty()) OPENSSL_cleanse(key_.data(), key_.size());
}

std::shared_ptr<const HmacKey> HmacKey::from_bytes(std::string_view key) {
  if (key.size() < kMinHmacKeyBytes) {
    throw config::ConfigError("hmac key is " + std::to_string(key.size()) + " bytes, at least " +
                              std::to_string(kMinHmacKeyBytes) + " are needed");
  }
  return std::shared_ptr<const HmacKey>(new HmacKey(key));
}

std::shared_ptr<const HmacKey> HmacKey::load(const std::string& key_file) {
  std::string key;
  std::string source;
  if (!key_file.empty()) {
    key = read_key_file(key_file);
    source = "key_file " + key_file;
  } else if (const char* variable = std::getenv(std::string(kHmacKeyVariable).c_str())) {
    key = variable;
    source = std::string(kHmacKeyVariable);
  } else {
    throw config::ConfigError("a policy uses hmac but has no key: set its key_file or " +
                              std::string(kHmacKeyVariable));
  }
  try {
    auto loaded = from_bytes(key);
    wipe(key);
    return loaded;
  } catch (const config::ConfigError& e) {
    wipe(key);
    throw config::ConfigError(source + ": " + e.what());
  }
}

void HmacKey::append(std::string& out, std::string_view text, unsigned prefix) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  out += "hmac:";
  out += id_;
  out += ':';
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
           reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest, &length) == nullptr) {
    out += "unavailable";  // libcrypto failed: never leak the value
    return;
  }
  append_hex(out, digest, length, prefix);
}

bool uses_hmac(const config::PolicyConfig& p) {
  if (is_hmac(p.content) || is_hmac(p.errors) || is_hmac(p.other)) return true;
  for (const auto* rules : {&p.keys, &p.resource_keys}) {
    for (const config::KeyRule& rule : *rules) {
      if (is_hmac(rule.mode)) return true;
    }
  }
  for (const auto* selectors : {&p.messages, &p.parts}) {
    for (const config::ModeByName& selector : *selectors) {
      if (is_hmac(selector.mode)) return true;
    }
  }
  return false;
}

}  // namespace proxy::policy
