// Experiment name -> id through MLflow's REST API, created on first use when the spans' route
// allows it (ExperimentRef::create), cached
// with a TTL. A concurrent create by someone else (400 RESOURCE_ALREADY_EXISTS) is followed by
// another lookup. Workers asking for the same name at once share one resolution; each resolution
// uses its own connection, since an HTTP connection carries one request at a time.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "exporter/http_client.hpp"

namespace proxy::exporter {

struct Resolution {
  std::string experiment_id;  // empty on failure
  std::string error;          // what went wrong, for the log
  bool retryable = true;      // false when retrying cannot help (creation not allowed)
  bool missing = false;       // the experiment does not exist and may not be created
  int http_status = 0;        // MLflow's status when it answered with an error
  bool tls_failed = false;  // could not reach MLflow over TLS (error says why)
};

class ExperimentResolver {
 public:
  ExperimentResolver(boost::asio::any_io_executor executor, UpstreamUrl upstream,
                     HttpClientOptions options, std::chrono::seconds cache_ttl);

  // `may_create`: create the experiment when MLflow does not have it. When not, a missing
  // experiment is a Resolution with `missing` set and `retryable` false.
  boost::asio::awaitable<Resolution> resolve(const std::string& name, bool may_create);

  // Forgets a cached id, after MLflow reported it unknown (experiment deleted and recreated).
  void invalidate(const std::string& name) { cache_.erase(name); }

 private:
  boost::asio::awaitable<Resolution> resolve_uncached(const std::string& name, bool may_create);
  boost::asio::awaitable<Resolution> lookup(HttpClient& client, const std::string& name);
  boost::asio::awaitable<Resolution> create(HttpClient& client, const std::string& name);

  struct CachedId {
    std::string id;
    std::chrono::steady_clock::time_point expires;
  };

  boost::asio::any_io_executor executor_;
  UpstreamUrl upstream_;
  HttpClientOptions options_;
  std::set<std::string> in_flight_;
  std::chrono::seconds cache_ttl_;
  std::map<std::string, CachedId> cache_;
};

}  // namespace proxy::exporter
