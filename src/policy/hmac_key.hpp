// The secret of the hmac mode: keyed pseudonyms ("hmac:<key id>:<hex>") that stay equal across
// traces and restarts but cannot be reversed by hashing guesses. The key lives only here, apart
// from the config (which holds at most the key file's path), and is wiped when the holder goes:
// a reload with a rotated key builds a new holder and the old one is cleansed with its policy.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

namespace proxy::policy {

// The variable that holds the key itself when a policy names no key_file.
inline constexpr std::string_view kHmacKeyVariable = "OTLP_MLFLOW_PROXY_HMAC_KEY";
inline constexpr std::size_t kMinHmacKeyBytes = 32;

class HmacKey {
 public:
  // From `key_file` (trailing newlines ignored) or, without one, from the variable. Throws
  // config::ConfigError when there is none or it is shorter than kMinHmacKeyBytes; the message
  // names the file or variable, never the key.
  static std::shared_ptr<const HmacKey> load(const std::string& key_file);
  // For tests and the benchmark.
  static std::shared_ptr<const HmacKey> from_bytes(std::string_view key);

  HmacKey(const HmacKey&) = delete;
  HmacKey& operator=(const HmacKey&) = delete;
  ~HmacKey();

  // The first 8 hex characters of the key's SHA-256: tells which key made a value.
  const std::string& id() const { return id_; }
  // Appends "hmac:<id>:<the first `prefix` hex characters of HMAC-SHA256(key, text)>".
  void append(std::string& out, std::string_view text, unsigned prefix) const;

 private:
  explicit HmacKey(std::string_view key);
  std::vector<unsigned char> key_;
  std::string id_;
};

// Whether any mode of the policy is hmac (it then needs a key to start).
bool uses_hmac(const config::PolicyConfig& policy);

}  // namespace proxy::policy
