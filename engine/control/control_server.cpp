#include "engine/control/control_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/read_until.hpp>
#include <asio/redirect_error.hpp>
#include <asio/streambuf.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/control/status_json.h"
#include "engine/log.h"

namespace hydrate {
namespace {

using asio::local::stream_protocol;
using nlohmann::json;

constexpr size_t kMaxRequest = 64 * 1024;

json error(const std::string& message) {
  return {{"ok", false}, {"error", message}};
}

json status_of(const std::shared_ptr<Export>& e, ControlRegistry& registry) {
  if (auto clone = registry.clone(e->info().name)) return clone_status_json(clone->status());
  return plain_export_json(e->info());
}

// Reads an unsigned byte count from settings[key] into `out`, checking [lo, hi].
// `what`: how the value is written, for the message ("a byte count").
std::string take_number(const json& settings, const char* key, const char* what, uint64_t lo,
                        uint64_t hi, uint64_t& out) {
  if (!settings.contains(key)) return {};
  const json& v = settings[key];
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    return std::string("setting '") + key + "' must be " + what + " (non-negative integer)";
  uint64_t n = v.get<uint64_t>();
  if (n < lo || n > hi) {
    return std::string("setting '") + key + "' = " + std::to_string(n) + " is out of range [" +
           std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  out = n;
  return {};
}

}  // namespace

std::string ControlServer::handle(ControlRegistry& registry, const std::string& line) {
  json request;
  try {
    request = json::parse(line);
  } catch (const json::exception& e) {
    return error(std::string("request is not valid JSON: ") + e.what()).dump();
  }
  if (!request.is_object() || !request.contains("command") || !request["command"].is_string())
    return error("request needs a string \"command\"").dump();
  std::string command = request["command"];
  std::string name;
  if (request.contains("export")) {
    if (!request["export"].is_string()) return error("\"export\" must be a string").dump();
    name = request["export"];
  }

  if (command == "status") {
    json list = json::array();
    for (auto& e : registry.exports()) {
      if (!name.empty() && e->info().name != name) continue;
      list.push_back(status_of(e, registry));
    }
    if (!name.empty() && list.empty()) return error("no export named '" + name + "'").dump();
    return json{{"ok", true}, {"exports", list}}.dump();
  }

  if (command != "pause" && command != "resume" && command != "set")
    return error("unknown command '" + command + "' (status, pause, resume, set)").dump();
  if (name.empty()) return error("command '" + command + "' needs an \"export\"").dump();
  auto clone = registry.clone(name);
  if (!clone) {
    if (registry.find(name)) return error("export '" + name + "' is not a clone").dump();
    return error("no export named '" + name + "'").dump();
  }

  if (command == "pause") {
    clone->pause();
  } else if (command == "resume") {
    clone->resume();
  } else {
    if (!request.contains("settings") || !request["settings"].is_object() ||
        request["settings"].empty())
      return error("command 'set' needs \"settings\": {rate, batch, max_inflight, min_share}")
          .dump();
    const json& s = request["settings"];
    for (auto& [key, value] : s.items()) {
      (void)value;
      if (key != "rate" && key != "batch" && key != "max_inflight" && key != "min_share")
        return error("unknown setting '" + key + "' (rate, batch, max_inflight, min_share)").dump();
    }
    HydrationSettings h = clone->hydration();
    uint32_t region = clone->region_map().region_size();
    std::string problem =
        take_number(s, "rate", "a byte count", 0, UINT64_MAX, h.rate_bytes_per_second);
    if (problem.empty())
      problem = take_number(s, "batch", "a byte count", region, 1ull << 30, h.batch_bytes);
    if (problem.empty())
      problem =
          take_number(s, "max_inflight", "a byte count", region, 16ull << 30, h.max_inflight_bytes);
    if (problem.empty()) {
      uint64_t percent = h.min_share_percent;
      problem = take_number(s, "min_share", "a percentage", 0, 100, percent);
      h.min_share_percent = static_cast<unsigned>(percent);
    }
    if (problem.empty() && h.max_inflight_bytes < h.batch_bytes) {
      problem = "max_inflight (" + std::to_string(h.max_inflight_bytes) +
                ") must be at least batch (" + std::to_string(h.batch_bytes) + ")";
    }
    if (!problem.empty()) return error(problem).dump();
    clone->set_hydration(h);
    log::info("control.set", {{"export", name},
                              {"rate", h.rate_bytes_per_second},
                              {"batch", h.batch_bytes},
                              {"max_inflight", h.max_inflight_bytes},
                              {"min_share", h.min_share_percent}});
  }
  return json{{"ok", true}, {"export", clone_status_json(clone->status())}}.dump();
}

struct ControlServer::Impl {
  Impl(asio::io_context& c, std::shared_ptr<ControlRegistry> r)
      : context(c), registry(std::move(r)), acceptor(c) {}

  static asio::awaitable<void> accept_loop(std::shared_ptr<Impl> self) {
    for (;;) {
      std::error_code ec;
      stream_protocol::socket socket(self->context);
      co_await self->acceptor.async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(self->context, serve(std::move(socket), self->registry), asio::detached);
    }
  }

  static asio::awaitable<void> serve(stream_protocol::socket socket,
                                     std::shared_ptr<ControlRegistry> registry) {
    asio::streambuf buffer(kMaxRequest);
    for (;;) {
      std::error_code ec;
      size_t n = co_await asio::async_read_until(socket, buffer, '\n',
                                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;  // closed, or a line longer than kMaxRequest
      std::string line(asio::buffers_begin(buffer.data()), asio::buffers_begin(buffer.data()) + n);
      buffer.consume(n);
      std::string reply = ControlServer::handle(*registry, line) + "\n";
      co_await asio::async_write(socket, asio::buffer(reply),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
    }
  }

  asio::io_context& context;
  std::shared_ptr<ControlRegistry> registry;
  stream_protocol::acceptor acceptor;
  std::string path;
};

ControlServer::ControlServer(asio::io_context& context, std::shared_ptr<ControlRegistry> registry)
    : impl_(std::make_shared<Impl>(context, std::move(registry))) {}

ControlServer::~ControlServer() {
  stop();
}

void ControlServer::start(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  if (fs::exists(p, ec)) {
    // Only replace a socket nobody answers on: two servers must not fight over one socket.
    stream_protocol::socket probe(impl_->context);
    probe.connect(stream_protocol::endpoint(path), ec);
    if (!ec) throw std::runtime_error("control socket " + path + " is in use by another process");
    if (!fs::is_socket(p))
      throw std::runtime_error("control socket path " + path + " exists and is not a socket");
    fs::remove(p, ec);
  }
  stream_protocol::endpoint endpoint(path);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("control socket " + path + ": " + ec.message());
  ::chmod(path.c_str(), 0600);
  impl_->path = path;
  asio::co_spawn(impl_->context, Impl::accept_loop(impl_), asio::detached);
  log::info("control.listen", {{"path", path}});
}

void ControlServer::stop() {
  if (!impl_ || impl_->path.empty()) return;
  asio::post(impl_->context, [impl = impl_] {
    std::error_code ec;
    impl->acceptor.close(ec);
  });
  std::error_code ec;
  std::filesystem::remove(impl_->path, ec);
  impl_->path.clear();
}

}  // namespace hydrate
