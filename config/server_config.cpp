#include "config/server_config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "config/units.h"
#include "nbd-server/listen_address.h"

namespace hydrate::config {
namespace {

constexpr size_t kMaxNameBytes = 4096;  // NBD limit for export names and descriptions
constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;
constexpr uint64_t TiB = 1024 * GiB;
using std::chrono::milliseconds;

bool is_power_of_two(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

std::string location_of(const YamlReader& reader, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.is_null()) return reader.file();
  return reader.file() + ":" + std::to_string(mark.line + 1) + ":" +
         std::to_string(mark.column + 1);
}

class ConfigParser {
 public:
  ConfigParser(std::string file, std::string base_directory)
      : reader_(std::move(file)), base_(std::move(base_directory)) {}

  ServerConfig parse(std::string_view yaml);

 private:
  std::string path_value(const YAML::Node& node, std::string_view path) const;
  std::vector<std::string> listen(const YAML::Node& node, std::string_view path) const;
  TlsConfig tls(const YAML::Node& node, std::string_view path) const;
  log::Level log_level(const YAML::Node& node, std::string_view path) const;
  ExportConfig export_entry(const YAML::Node& node, std::string_view path) const;
  CloneExportConfig clone(const YAML::Node& node, std::string_view path,
                          const ExportConfig& owner) const;
  SourceSpec source(const YAML::Node& node, std::string_view path) const;
  HydrationSettings hydration(const YAML::Node& node, std::string_view path,
                              uint32_t region_size) const;

  YamlReader reader_;
  std::string base_;
};

// A path from the file: non-empty; relative ones are relative to the configuration's directory
// so the server can be started from anywhere (and daemonize to "/").
std::string ConfigParser::path_value(const YAML::Node& node, std::string_view path) const {
  std::string text = reader_.string(node, path);
  if (text.empty()) reader_.fail(node, path, "needs a path, found an empty string");
  if (text.find('\0') != std::string::npos) reader_.fail(node, path, "path contains a NUL byte");
  std::filesystem::path p(text);
  if (p.is_relative()) p = std::filesystem::path(base_) / p;
  return p.lexically_normal().string();
}

std::vector<std::string> ConfigParser::listen(const YAML::Node& node, std::string_view path) const {
  std::vector<std::string> out;
  auto one = [&](const YAML::Node& item, const std::string& item_path) {
    std::string uri = reader_.string(item, item_path);
    nbd::ParsedListenAddress parsed = nbd::parse_listen_address(uri);
    if (!parsed) reader_.fail(item, item_path, YamlReader::shown(item) + ": " + parsed.problem);
    // A relative socket path is relative to this file, like every other path in it.
    const nbd::ListenAddress& a = *parsed.address;
    if (a.kind == nbd::ListenAddress::Kind::unix_socket && !a.path.starts_with('/'))
      uri = "unix:" + (std::filesystem::path(base_) / a.path).lexically_normal().string();
    out.push_back(uri);
  };
  if (node.IsScalar()) {
    one(node, std::string(path));
  } else if (node.IsSequence()) {
    for (size_t i = 0; i < node.size(); ++i) one(node[i], YamlReader::item(path, i));
  } else {
    reader_.fail(node, path,
                 "expected a listen address or a list of them, found " + YamlReader::shown(node));
  }
  return out;
}

TlsConfig ConfigParser::tls(const YAML::Node& node, std::string_view path) const {
  reader_.check_map(node, path, {"mode", "certificates", "psk", "verify_peer"});
  TlsConfig tls;
  if (YamlReader::has(node, "mode")) {
    std::string key = YamlReader::key(path, "mode");
    YAML::Node mode = node["mode"];
    std::string text = reader_.string(mode, key);
    if (text == "off")
      tls.mode = TlsConfig::Mode::off;
    else if (text == "on")
      tls.mode = TlsConfig::Mode::on;
    else if (text == "require")
      tls.mode = TlsConfig::Mode::require;
    else
      reader_.fail(mode, key,
                   YamlReader::shown(mode) + " is not a TLS mode; expected off, on or require");
  }
  if (YamlReader::has(node, "certificates"))
    tls.certificates = path_value(reader_.require(node, path, "certificates"),
                                  YamlReader::key(path, "certificates"));
  if (YamlReader::has(node, "psk"))
    tls.psk = path_value(reader_.require(node, path, "psk"), YamlReader::key(path, "psk"));
  if (YamlReader::has(node, "verify_peer"))
    tls.verify_peer = reader_.boolean(node["verify_peer"], YamlReader::key(path, "verify_peer"));
  if (tls.mode != TlsConfig::Mode::off && tls.certificates.empty() && tls.psk.empty())
    reader_.fail(node, path,
                 "TLS mode on/require needs 'certificates' (a directory) or 'psk' (a file)");
  return tls;
}

log::Level ConfigParser::log_level(const YAML::Node& node, std::string_view path) const {
  std::string text = reader_.string(node, path);
  for (log::Level l : {log::Level::debug, log::Level::info, log::Level::warn, log::Level::error})
    if (text == log::level_name(l)) return l;
  reader_.fail(
      node, path,
      YamlReader::shown(node) + " is not a log level; expected debug, info, warn or error");
}

SourceSpec ConfigParser::source(const YAML::Node& node, std::string_view path) const {
  if (node.IsMap()) {
    reader_.check_map(node, path, {"nbdkit"});
    std::string key = YamlReader::key(path, "nbdkit");
    YAML::Node argv = reader_.require(node, path, "nbdkit");
    if (!argv.IsSequence() || argv.size() == 0)
      reader_.fail(argv, key,
                   "expected a non-empty list: the nbdkit plugin, then its parameters (e.g. [curl, "
                   "\"url=https://…\"])");
    std::vector<std::string> args;
    for (size_t i = 0; i < argv.size(); ++i) {
      args.push_back(reader_.string(argv[i], YamlReader::item(key, i)));
      if (args.back().empty()) reader_.fail(argv[i], YamlReader::item(key, i), "empty argument");
    }
    return SourceSpec::nbdkit(std::move(args));
  }
  std::string text = reader_.string(node, path);
  if (text.empty()) reader_.fail(node, path, "needs a source, found an empty string");
  if (size_t scheme_end = text.find("://"); scheme_end != std::string::npos) {
    std::string scheme = text.substr(0, scheme_end);
    if (scheme != "nbd" && scheme != "nbds" && scheme != "nbd+unix" && scheme != "nbds+unix")
      reader_.fail(node, path,
                   "unsupported scheme '" + scheme +
                       "://'; expected nbd://, nbds://, nbd+unix://, nbds+unix://, a path, or "
                       "{nbdkit: [plugin, params…]}");
    return SourceSpec::uri(text);
  }
  return SourceSpec::path(path_value(node, path));
}

HydrationSettings ConfigParser::hydration(const YAML::Node& node, std::string_view path,
                                          uint32_t region_size) const {
  reader_.check_map(node, path, {"enabled", "batch", "max_inflight", "rate"});
  HydrationSettings h;
  auto key = [&](std::string_view k) { return YamlReader::key(path, k); };
  if (YamlReader::has(node, "enabled"))
    h.enabled = reader_.boolean(node["enabled"], key("enabled"));
  uint64_t min_batch = std::max<uint64_t>(4 * KiB, region_size);
  if (YamlReader::has(node, "batch"))
    h.batch_bytes = reader_.size(node["batch"], key("batch"), min_batch, 1 * GiB);
  if (YamlReader::has(node, "max_inflight"))
    h.max_inflight_bytes =
        reader_.size(node["max_inflight"], key("max_inflight"), 4 * KiB, 64 * GiB);
  if (h.max_inflight_bytes < h.batch_bytes)
    reader_.fail(YamlReader::has(node, "max_inflight") ? node["max_inflight"] : node,
                 key("max_inflight"),
                 format_size(h.max_inflight_bytes) + " is smaller than batch (" +
                     format_size(h.batch_bytes) + "); expected at least one batch in flight");
  if (YamlReader::has(node, "rate"))
    h.rate_bytes_per_second = reader_.rate(node["rate"], key("rate"));
  return h;
}

CloneExportConfig ConfigParser::clone(const YAML::Node& node, std::string_view path,
                                      const ExportConfig& owner) const {
  reader_.check_map(
      node, path,
      {"source", "destination", "metadata", "region_size", "fetch_window", "copy_on_read",
       "discard_passdown", "destination_zeroed", "discard_source_after_commit", "commit_interval",
       "source_timeout", "source_connections", "hydration"});
  auto key = [&](std::string_view k) { return YamlReader::key(path, k); };
  CloneExportConfig c;
  c.source = source(reader_.require(node, path, "source"), key("source"));
  c.destination = path_value(reader_.require(node, path, "destination"), key("destination"));
  c.metadata = path_value(reader_.require(node, path, "metadata"), key("metadata"));

  CloneSettings& s = c.settings;
  s.name = owner.name;
  s.description = owner.description;
  s.read_only = owner.read_only;
  if (YamlReader::has(node, "region_size")) {
    YAML::Node v = node["region_size"];
    uint64_t size = reader_.size(v, key("region_size"), 4 * KiB, 1 * GiB);
    if (!is_power_of_two(size))
      reader_.fail(v, key("region_size"),
                   YamlReader::shown(v) +
                       " is not a power of two; expected a power of two from 4KiB to 1GiB");
    s.region_size = static_cast<uint32_t>(size);
  }
  if (YamlReader::has(node, "fetch_window")) {
    YAML::Node v = node["fetch_window"];
    uint64_t size = reader_.size(v, key("fetch_window"), 4 * KiB, 32 * MiB);
    if (!is_power_of_two(size))
      reader_.fail(v, key("fetch_window"),
                   YamlReader::shown(v) +
                       " is not a power of two; expected a power of two from 4KiB to 32MiB");
    s.fetch_window = static_cast<uint32_t>(size);
  }
  if (s.region_size != 0 && s.fetch_window < s.region_size)
    reader_.fail(YamlReader::has(node, "fetch_window") ? node["fetch_window"] : node,
                 key("fetch_window"),
                 format_size(s.fetch_window) + " is smaller than region_size (" +
                     format_size(s.region_size) + "); a fetch must cover at least one region");
  struct Flag {
    const char* name;
    bool* value;
  };
  for (Flag f :
       {Flag{"copy_on_read", &s.copy_on_read}, Flag{"discard_passdown", &s.discard_passdown},
        Flag{"destination_zeroed", &s.destination_zeroed},
        Flag{"discard_source_after_commit", &s.discard_source_after_commit}})
    if (YamlReader::has(node, f.name)) *f.value = reader_.boolean(node[f.name], key(f.name));
  if (YamlReader::has(node, "commit_interval"))
    s.commit_interval = reader_.duration(node["commit_interval"], key("commit_interval"),
                                         milliseconds(1), milliseconds(3'600'000));
  if (YamlReader::has(node, "source_timeout"))
    s.source_timeout = reader_.duration(node["source_timeout"], key("source_timeout"),
                                        milliseconds(100), milliseconds(24 * 3'600'000));
  if (YamlReader::has(node, "source_connections"))
    c.source_connections = static_cast<unsigned>(
        reader_.integer(node["source_connections"], key("source_connections"), 1, 64));
  if (YamlReader::has(node, "hydration"))
    s.hydration = hydration(node["hydration"], key("hydration"), s.region_size);
  return c;
}

ExportConfig ConfigParser::export_entry(const YAML::Node& node, std::string_view path) const {
  reader_.check_map(node, path, {"name", "description", "readonly", "default", "path", "clone"});
  auto key = [&](std::string_view k) { return YamlReader::key(path, k); };
  ExportConfig e;
  e.location = location_of(reader_, node);
  YAML::Node name = reader_.require(node, path, "name");
  e.name = reader_.string(name, key("name"));
  if (e.name.empty() || e.name.size() > kMaxNameBytes)
    reader_.fail(name, key("name"),
                 "expected 1 to 4096 bytes, found " + std::to_string(e.name.size()));
  if (YamlReader::has(node, "description")) {
    YAML::Node d = node["description"];
    e.description = d.IsNull() ? std::string() : reader_.string(d, key("description"));
    if (e.description.size() > kMaxNameBytes)
      reader_.fail(d, key("description"), "longer than 4096 bytes");
  }
  if (YamlReader::has(node, "readonly"))
    e.read_only = reader_.boolean(node["readonly"], key("readonly"));
  if (YamlReader::has(node, "default"))
    e.is_default = reader_.boolean(node["default"], key("default"));
  bool has_path = YamlReader::has(node, "path");
  bool has_clone = YamlReader::has(node, "clone");
  if (has_path == has_clone)
    reader_.fail(node, path,
                 has_path
                     ? "has both 'path' and 'clone'; an export is either a plain file or a clone"
                     : "needs 'path' (a plain export) or 'clone' (a clone export)");
  if (has_path) e.path = path_value(reader_.require(node, path, "path"), key("path"));
  if (has_clone) e.clone = clone(reader_.require(node, path, "clone"), key("clone"), e);
  return e;
}

ServerConfig ConfigParser::parse(std::string_view yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    reader_.fail_at(e.mark, "", "YAML syntax error: " + e.msg);
  }
  if (!root.IsDefined() || root.IsNull())
    reader_.fail(root, "", "the configuration is empty; it needs at least 'exports'");
  reader_.check_map(
      root, "",
      {"listen", "socket_activation", "threads", "blocking_threads", "max_connections",
       "handshake_timeout", "log_level", "tls", "control", "exports"});
  ServerConfig c;
  c.file = reader_.file();
  if (YamlReader::has(root, "listen"))
    c.listen = listen(reader_.require(root, "", "listen"), "listen");
  if (YamlReader::has(root, "socket_activation"))
    c.socket_activation = reader_.boolean(root["socket_activation"], "socket_activation");
  if (YamlReader::has(root, "threads"))
    c.threads = static_cast<unsigned>(reader_.integer(root["threads"], "threads", 0, 256));
  if (YamlReader::has(root, "blocking_threads"))
    c.blocking_threads = static_cast<unsigned>(
        reader_.integer(root["blocking_threads"], "blocking_threads", 1, 1024));
  if (YamlReader::has(root, "max_connections"))
    c.max_connections = static_cast<unsigned>(
        reader_.integer(root["max_connections"], "max_connections", 1, 1'000'000));
  if (YamlReader::has(root, "handshake_timeout"))
    c.handshake_timeout = reader_.duration(root["handshake_timeout"], "handshake_timeout",
                                           milliseconds(100), milliseconds(3'600'000));
  if (YamlReader::has(root, "log_level")) c.log_level = log_level(root["log_level"], "log_level");
  if (YamlReader::has(root, "tls")) c.tls = tls(reader_.require(root, "", "tls"), "tls");
  if (YamlReader::has(root, "control"))
    c.control = path_value(reader_.require(root, "", "control"), "control");

  YAML::Node exports = reader_.require(root, "", "exports");
  if (!exports.IsSequence() || exports.size() == 0)
    reader_.fail(exports, "exports",
                 "expected a non-empty list of exports, found " + YamlReader::shown(exports));
  for (size_t i = 0; i < exports.size(); ++i)
    c.exports.push_back(export_entry(exports[i], YamlReader::item("exports", i)));
  validate_exports(c);
  return c;
}

}  // namespace

void validate_exports(const ServerConfig& config) {
  auto where = [&](const ExportConfig& e) {
    return e.location.empty() ? std::string("command line") : e.location;
  };
  if (config.exports.empty())
    throw ConfigError((config.file.empty() ? std::string("configuration") : config.file) +
                      ": no exports; give at least one in 'exports' (or --export NAME=PATH)");
  std::map<std::string, const ExportConfig*> by_name;
  const ExportConfig* default_export = nullptr;
  for (const ExportConfig& e : config.exports) {
    auto [it, inserted] = by_name.emplace(e.name, &e);
    if (!inserted)
      throw ConfigError(where(e) + ": export name '" + e.name + "' is used twice (first at " +
                        where(*it->second) + "); export names must be unique");
    if (e.is_default) {
      if (default_export)
        throw ConfigError(where(e) + ": export '" + e.name + "' is marked default, but '" +
                          default_export->name + "' already is (" + where(*default_export) +
                          "); at most one export can be the default");
      default_export = &e;
    }
  }
}

ServerConfig parse_server_config(std::string_view yaml, const std::string& file,
                                 const std::string& base_directory) {
  return ConfigParser(file, base_directory).parse(yaml);
}

ServerConfig load_server_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec(errno, std::generic_category());
    throw ConfigError(path + ": cannot read the configuration: " + ec.message());
  }
  std::ostringstream text;
  text << in.rdbuf();
  std::filesystem::path absolute = std::filesystem::absolute(path);
  return parse_server_config(text.str(), path, absolute.parent_path().string());
}

}  // namespace hydrate::config
