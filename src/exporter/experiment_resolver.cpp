#include "exporter/experiment_resolver.hpp"

#include <cctype>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace proxy::exporter {

namespace net = boost::asio;
namespace json = boost::json;

namespace {

std::string percent_encode(const std::string& text) {
  std::string out;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0f]);
    }
  }
  return out;
}

// MLflow's REST errors are {"error_code": "...", "message": "..."}.
std::string error_code_of(const std::string& body) {
  boost::system::error_code ec;
  const json::value parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) return {};
  const auto* code = parsed.as_object().if_contains("error_code");
  return code && code->is_string() ? std::string(code->as_string()) : std::string();
}

std::string summarize(const HttpResult& result) {
  if (result.error) return result.describe_error();
  return "HTTP " + std::to_string(result.response.result_int()) + " " +
         result.response.body().substr(0, 300);
}

// The HTTP status of an answer, or the transport's failure prefixed with `what`.
Resolution answered(const HttpResult& result, const std::string& what) {
  Resolution resolution;
  if (result.error) {
    resolution.error = what + summarize(result);
    resolution.tls_failed = result.tls_failed;
  } else {
    resolution.http_status = result.response.result_int();
  }
  return resolution;
}

}  // namespace

ExperimentResolver::ExperimentResolver(net::any_io_executor executor, UpstreamUrl upstream,
                                       HttpClientOptions options, std::chrono::seconds cache_ttl)
    : executor_(std::move(executor)),
      upstream_(std::move(upstream)),
      options_(std::move(options)),
      cache_ttl_(cache_ttl) {}

net::awaitable<Resolution> ExperimentResolver::resolve(const std::string& name, bool may_create) {
  for (;;) {
    if (auto it = cache_.find(name); it != cache_.end() && it->second.expires > std::chrono::steady_clock::now()) {
      Resolution cached;
      cached.experiment_id = it->second.id;
      co_return cached;
    }
    if (!in_flight_.contains(name)) break;
    // Another worker is resolving this name: wait for its answer instead of asking twice.
    net::steady_timer wait(executor_, std::chrono::milliseconds(20));
    co_await wait.async_wait(net::use_awaitable);
  }
  in_flight_.insert(name);
  Resolution found;
  try {
    found = co_await resolve_uncached(name, may_create);
  } catch (...) {
    in_flight_.erase(name);
    throw;
  }
  in_flight_.erase(name);
  co_return found;
}

net::awaitable<Resolution> ExperimentResolver::resolve_uncached(const std::string& name, bool may_create) {
  HttpClient client(executor_, upstream_, options_);
  Resolution found = co_await lookup(client, name);
  if (found.experiment_id.empty() && found.http_status == 404) {
    if (!may_create) {
      Resolution missing;
      missing.error = "experiment \"" + name + "\" does not exist in MLflow and may not be created";
      missing.retryable = false;
      missing.missing = true;
      missing.http_status = 404;
      co_return missing;
    }
    found = co_await create(client, name);
    if (found.experiment_id.empty() && found.http_status == 400 &&
        found.error.find("RESOURCE_ALREADY_EXISTS") != std::string::npos) {
      found = co_await lookup(client, name);  // created concurrently by another client
    }
  }
  if (!found.experiment_id.empty()) {
    cache_[name] = {found.experiment_id, std::chrono::steady_clock::now() + cache_ttl_};
  }
  co_return found;
}

net::awaitable<Resolution> ExperimentResolver::lookup(HttpClient& client, const std::string& name) {
  http::request<http::string_body> request{
      http::verb::get,
      client.upstream().target("/api/2.0/mlflow/experiments/get-by-name?experiment_name=" +
                                percent_encode(name)),
      11};
  const HttpResult result = co_await client.send(std::move(request));
  Resolution resolution = answered(result, "looking up experiment \"" + name + "\": ");
  if (result.error) co_return resolution;
  if (resolution.http_status == 200) {
    boost::system::error_code ec;
    const json::value parsed = json::parse(result.response.body(), ec);
    const json::value* id = nullptr;
    if (!ec && parsed.is_object()) {
      if (const auto* experiment = parsed.as_object().if_contains("experiment");
          experiment && experiment->is_object()) {
        id = experiment->as_object().if_contains("experiment_id");
        if (const auto* stage = experiment->as_object().if_contains("lifecycle_stage");
            stage && stage->is_string() && stage->as_string() == "deleted") {
          spdlog::warn("experiment \"{}\" is deleted in MLflow; traces sent to it will be hidden "
                       "until it is restored", name);
        }
      }
    }
    if (id && id->is_string()) {
      resolution.experiment_id = std::string(id->as_string());
    } else {
      resolution.error = "looking up experiment \"" + name + "\": unexpected answer " + summarize(result);
    }
    co_return resolution;
  }
  if (error_code_of(result.response.body()) == "RESOURCE_DOES_NOT_EXIST") resolution.http_status = 404;
  resolution.error = "looking up experiment \"" + name + "\": " + summarize(result);
  co_return resolution;
}

net::awaitable<Resolution> ExperimentResolver::create(HttpClient& client, const std::string& name) {
  http::request<http::string_body> request{
      http::verb::post, client.upstream().target("/api/2.0/mlflow/experiments/create"), 11};
  request.set(http::field::content_type, "application/json");
  request.body() = json::serialize(json::object{{"name", name}});
  const HttpResult result = co_await client.send(std::move(request));
  Resolution resolution = answered(result, "creating experiment \"" + name + "\": ");
  if (result.error) co_return resolution;
  if (resolution.http_status == 200) {
    boost::system::error_code ec;
    const json::value parsed = json::parse(result.response.body(), ec);
    const json::value* id = !ec && parsed.is_object() ? parsed.as_object().if_contains("experiment_id") : nullptr;
    if (id && id->is_string()) {
      resolution.experiment_id = std::string(id->as_string());
      spdlog::info("created MLflow experiment \"{}\" with id {}", name, resolution.experiment_id);
      co_return resolution;
    }
  }
  resolution.error = "creating experiment \"" + name + "\": " + summarize(result) +
                     (error_code_of(result.response.body()) == "RESOURCE_ALREADY_EXISTS"
                          ? " RESOURCE_ALREADY_EXISTS"
                          : "");
  co_return resolution;
}

}  // namespace proxy::exporter
