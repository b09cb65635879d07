#include "config/server_config.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "config/clone_schema.h"
#include "nbd-server/listen_address.h"

namespace hydrate::config {
namespace {

constexpr size_t kMaxNameBytes = 4096;  // NBD limit for export names and descriptions
using std::chrono::milliseconds;

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
  SettingValue setting_value(const CloneSetting& s, const YAML::Node& node,
                             std::string_view path) const;
  void read_clone_settings(const YAML::Node& node, std::string_view path,
                           CloneExportConfig& c) const;

  YamlReader reader_;
  std::string base_;
  ProfileDefaults profile_;  // the top-level `profile:` map, read before the exports
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

// A clone setting's value from its YAML node; the range and rule come from the schema.
SettingValue ConfigParser::setting_value(const CloneSetting& s, const YAML::Node& node,
                                         std::string_view path) const {
  switch (s.kind) {
    case SettingKind::boolean:
      return reader_.boolean(node, path);
    case SettingKind::size: {
      uint64_t size = reader_.size(node, path, s.min, s.max);
      if (std::string problem = s.rule_problem(size); !problem.empty())
        reader_.fail(node, path, YamlReader::shown(node) + " is " + problem);
      return size;
    }
    case SettingKind::duration:
      return reader_.duration(node, path, milliseconds(s.min), milliseconds(s.max));
    case SettingKind::count:
      return reader_.integer(node, path, s.min, s.max);
    case SettingKind::rate:
      return reader_.rate(node, path);
  }
  reader_.fail(node, path, "unknown kind of setting");
}

// The tunable keys of `clone:` and its sections (clone_schema.h), then the rules between them.
void ConfigParser::read_clone_settings(const YAML::Node& node, std::string_view path,
                                       CloneExportConfig& c) const {
  for (std::string_view section : clone_yaml_sections())
    if (YamlReader::has(node, section)) {
      std::vector<std::string_view> known = clone_yaml_keys(section);
      // Path keys, read below by clone() like metadata (relative to this file).
      if (section == "hydration") known.push_back("prefetch");
      if (section == "profile") known.push_back("file");
      reader_.check_map(node[std::string(section)], YamlReader::key(path, section), known);
    }
  auto node_of = [&](const CloneSetting& s) {
    const YAML::Node parent = s.yaml_section.empty() ? node : node[std::string(s.yaml_section)];
    return parent.IsDefined() ? parent[std::string(s.yaml_key)] : parent;
  };
  for (const CloneSetting& s : clone_settings()) {
    YAML::Node value = node_of(s);
    if (value.IsDefined())
      s.store(c, setting_value(s, value, YamlReader::key(path, s.path(KeySyntax::yaml))));
  }
  auto given = [&](const CloneSetting& s) { return node_of(s).IsDefined(); };
  if (auto conflict = find_clone_settings_conflict(c, given, KeySyntax::yaml)) {
    YAML::Node at = node_of(*conflict->blamed);
    reader_.fail(at.IsDefined() ? at : node,
                 YamlReader::key(path, conflict->blamed->path(KeySyntax::yaml)), conflict->problem);
  }
}

CloneExportConfig ConfigParser::clone(const YAML::Node& node, std::string_view path,
                                      const ExportConfig& owner) const {
  std::vector<std::string_view> known = {"source", "destination", "metadata"};
  for (std::string_view k : clone_yaml_keys("")) known.push_back(k);
  reader_.check_map(node, path, known);
  auto key = [&](std::string_view k) { return YamlReader::key(path, k); };
  CloneExportConfig c;
  c.source = source(reader_.require(node, path, "source"), key("source"));
  c.destination = path_value(reader_.require(node, path, "destination"), key("destination"));
  c.metadata = path_value(reader_.require(node, path, "metadata"), key("metadata"));
  c.settings.name = owner.name;
  c.settings.description = owner.description;
  c.settings.read_only = owner.read_only;
  // The top-level profile map first; the clone's own profile keys override it.
  c.settings.profile.dir = profile_.dir;
  c.settings.profile.record_limit_bytes = profile_.record_limit_bytes;
  c.settings.profile.record_time = profile_.record_time;
  read_clone_settings(node, path, c);
  if (YAML::Node p = node["profile"]; p.IsDefined() && YamlReader::has(p, "file"))
    c.settings.profile.file =
        path_value(reader_.require(p, key("profile"), "file"), key("profile.file"));
  else if (profile_.dir.empty())
    c.settings.profile.file = profile_file_beside(c.metadata);
  if (YAML::Node h = node["hydration"]; h.IsDefined() && YamlReader::has(h, "prefetch")) {
    std::string list_key = key("hydration.prefetch");
    YAML::Node list = h["prefetch"];
    if (!list.IsSequence())
      reader_.fail(list, list_key,
                   "expected a list of profile files, found " + YamlReader::shown(list));
    for (size_t i = 0; i < list.size(); ++i)
      c.settings.profile.prefetch.push_back(path_value(list[i], YamlReader::item(list_key, i)));
  }
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
       "handshake_timeout", "log_level", "tls", "control", "profile", "exports"});
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

  // Before the exports: each clone starts from these profile defaults.
  if (YamlReader::has(root, "profile")) {
    YAML::Node p = reader_.require(root, "", "profile");
    reader_.check_map(p, "profile", {"dir", "record_limit", "record_time"});
    if (YamlReader::has(p, "dir"))
      profile_.dir = path_value(reader_.require(p, "profile", "dir"), "profile.dir");
    // The limits take the same values as a clone's own (their ranges live in clone_schema).
    for (const CloneSetting& s : clone_settings()) {
      std::string at = s.path(KeySyntax::yaml);
      if (at == "profile.record_limit" && YamlReader::has(p, "record_limit"))
        profile_.record_limit_bytes = std::get<uint64_t>(setting_value(s, p["record_limit"], at));
      if (at == "profile.record_time" && YamlReader::has(p, "record_time"))
        profile_.record_time = std::get<milliseconds>(setting_value(s, p["record_time"], at));
    }
    c.profile = profile_;
  }
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

std::string profile_file_beside(const std::string& metadata) {
  return metadata + ".hprof";
}

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
