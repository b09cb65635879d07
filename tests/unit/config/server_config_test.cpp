#include "config/server_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace hydrate::config {
namespace {

using std::chrono::milliseconds;

ServerConfig parse(const std::string& yaml) {
  return parse_server_config(yaml, "test.yaml", "/etc/hydrate");
}

// The error a bad configuration gives; fails the test if it parses.
std::string error_of(const std::string& yaml) {
  try {
    parse(yaml);
  } catch (const ConfigError& e) {
    std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << "not one line: " << message;
    return message;
  }
  ADD_FAILURE() << "accepted:\n" << yaml;
  return "";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(ServerConfig, FoundationSchema) {
  ServerConfig c = parse(R"(
listen: [ "tcp://127.0.0.1:10809", "unix:/run/hydrate/nbd.sock" ]
exports:
  - name: disk0
    path: /var/lib/images/disk0.img
    readonly: false
    description: "text shown by nbdinfo"
  - name: iso
    path: images/install.iso
    readonly: true
)");
  EXPECT_EQ(c.file, "test.yaml");
  EXPECT_EQ(c.listen,
            (std::vector<std::string>{"tcp://127.0.0.1:10809", "unix:/run/hydrate/nbd.sock"}));
  ASSERT_EQ(c.exports.size(), 2u);
  EXPECT_EQ(c.exports[0].name, "disk0");
  EXPECT_EQ(c.exports[0].path, "/var/lib/images/disk0.img");
  EXPECT_FALSE(c.exports[0].read_only);
  EXPECT_EQ(c.exports[0].description, "text shown by nbdinfo");
  EXPECT_FALSE(c.exports[0].clone.has_value());
  EXPECT_EQ(c.exports[0].location, "test.yaml:4:5");
  // Relative paths are relative to the configuration's directory.
  EXPECT_EQ(c.exports[1].path, "/etc/hydrate/images/install.iso");
  EXPECT_TRUE(c.exports[1].read_only);
  // Defaults.
  EXPECT_TRUE(c.socket_activation);
  EXPECT_EQ(c.threads, 0u);
  EXPECT_EQ(c.blocking_threads, BlockingPool::kDefaultThreads);
  EXPECT_EQ(c.max_connections, 1024u);
  EXPECT_EQ(c.handshake_timeout, milliseconds(30'000));
  EXPECT_EQ(c.tls.mode, TlsConfig::Mode::off);
  EXPECT_TRUE(c.control.empty());
  EXPECT_FALSE(c.log_level.has_value());
}

TEST(ServerConfig, ServerLevelKeys) {
  ServerConfig c = parse(R"(
listen: unix:nbd.sock
socket_activation: false
threads: 4
blocking_threads: 32
max_connections: 16
handshake_timeout: 5s
log_level: debug
tls: { mode: require, certificates: /etc/pki/hydrate, verify_peer: true }
control: /run/hydrate/control.sock
exports: [ { name: a, path: /a.img, default: true } ]
)");
  EXPECT_EQ(c.listen, std::vector<std::string>{"unix:/etc/hydrate/nbd.sock"});
  EXPECT_FALSE(c.socket_activation);
  EXPECT_EQ(c.threads, 4u);
  EXPECT_EQ(c.blocking_threads, 32u);
  EXPECT_EQ(c.max_connections, 16u);
  EXPECT_EQ(c.handshake_timeout, milliseconds(5000));
  EXPECT_EQ(c.log_level, log::Level::debug);
  EXPECT_EQ(c.tls.mode, TlsConfig::Mode::require);
  EXPECT_EQ(c.tls.certificates, "/etc/pki/hydrate");
  EXPECT_TRUE(c.tls.verify_peer);
  EXPECT_EQ(c.control, "/run/hydrate/control.sock");
  EXPECT_TRUE(c.exports[0].is_default);
}

TEST(ServerConfig, CloneSchemaFillsCloneSettings) {
  ServerConfig c = parse(R"(
exports:
  - name: vm1
    description: clone of vm1
    readonly: true
    clone:
      source: nbd://backup.example.com/vm1
      destination: /var/lib/hydrate/vm1.img
      metadata: vm1.meta
      region_size: 64KiB
      fetch_window: 128KiB
      copy_on_read: false
      discard_passdown: false
      destination_zeroed: true
      discard_source_after_commit: true
      commit_interval: 250ms
      source_timeout: 2m
      source_connections: 8
      hydration: { enabled: false, batch: 8MiB, max_inflight: 128MiB, rate: 50MiB/s }
  - name: vm2
    clone:
      source: { nbdkit: [ curl, "url=https://example.com/disk.img" ] }
      destination: /dev/vdb
      metadata: /var/lib/hydrate/vm2.meta
  - name: vm3
    clone: { source: base.img, destination: /d3, metadata: /m3 }
)");
  ASSERT_EQ(c.exports.size(), 3u);
  const ExportConfig& vm1 = c.exports[0];
  ASSERT_TRUE(vm1.clone.has_value());
  EXPECT_TRUE(vm1.path.empty());
  const CloneExportConfig& k = *vm1.clone;
  EXPECT_EQ(k.source, SourceSpec::uri("nbd://backup.example.com/vm1"));
  EXPECT_EQ(k.destination, "/var/lib/hydrate/vm1.img");
  EXPECT_EQ(k.metadata, "/etc/hydrate/vm1.meta");
  EXPECT_EQ(k.source_connections, 8u);
  const CloneSettings& s = k.settings;
  EXPECT_EQ(s.name, "vm1");
  EXPECT_EQ(s.description, "clone of vm1");
  EXPECT_TRUE(s.read_only);
  EXPECT_EQ(s.region_size, 64u << 10);
  EXPECT_EQ(s.fetch_window, 128u << 10);
  EXPECT_FALSE(s.copy_on_read);
  EXPECT_FALSE(s.discard_passdown);
  EXPECT_TRUE(s.destination_zeroed);
  EXPECT_TRUE(s.discard_source_after_commit);
  EXPECT_EQ(s.commit_interval, milliseconds(250));
  EXPECT_EQ(s.source_timeout, milliseconds(120'000));
  EXPECT_FALSE(s.hydration.enabled);
  EXPECT_EQ(s.hydration.batch_bytes, 8u << 20);
  EXPECT_EQ(s.hydration.max_inflight_bytes, 128u << 20);
  EXPECT_EQ(s.hydration.rate_bytes_per_second, 50u << 20);

  const CloneExportConfig& vm2 = *c.exports[1].clone;
  EXPECT_EQ(vm2.source, SourceSpec::nbdkit({"curl", "url=https://example.com/disk.img"}));
  // Unset keys keep the engine's defaults.
  CloneSettings defaults;
  EXPECT_EQ(vm2.settings.region_size, defaults.region_size);
  EXPECT_EQ(vm2.settings.fetch_window, defaults.fetch_window);
  EXPECT_EQ(vm2.settings.commit_interval, defaults.commit_interval);
  EXPECT_EQ(vm2.settings.hydration.batch_bytes, defaults.hydration.batch_bytes);
  EXPECT_EQ(vm2.source_connections, 4u);

  EXPECT_EQ(c.exports[2].clone->source, SourceSpec::path("/etc/hydrate/base.img"));
}

// --- one test per class of bad input: the message names file, line, column, key path and
// what is accepted.

TEST(ServerConfigErrors, YamlSyntaxError) {
  std::string m = error_of("exports:\n  - name: [unclosed\n");
  EXPECT_HAS(m, "test.yaml:");
  EXPECT_HAS(m, "YAML syntax error");
}

TEST(ServerConfigErrors, UnknownTopLevelKey) {
  std::string m = error_of("exports: [ { name: a, path: /a } ]\nlisten_on: tcp://x\n");
  EXPECT_HAS(m, "test.yaml:2:1: listen_on: unknown key");
  EXPECT_HAS(m, "accepts listen, socket_activation");
}

TEST(ServerConfigErrors, UnknownKeyInsideAClone) {
  std::string m = error_of(R"(exports:
  - name: a
    clone:
      source: /s
      destination: /d
      metadata: /m
      regionsize: 64KiB
)");
  EXPECT_HAS(m, "test.yaml:7:7: exports[0].clone.regionsize: unknown key");
  EXPECT_HAS(m, "region_size");
}

TEST(ServerConfigErrors, DuplicateKey) {
  std::string m = error_of("exports:\n  - name: a\n    path: /a\n    path: /b\n");
  EXPECT_HAS(m, "test.yaml:4:5: exports[0].path: duplicate key");
}

TEST(ServerConfigErrors, MissingRequiredKeys) {
  EXPECT_HAS(error_of("listen: unix:/x\n"), "missing required key 'exports'");
  std::string m = error_of("exports:\n  - path: /a\n");
  EXPECT_HAS(m, "test.yaml:2:5: exports[0]: missing required key 'name'");
  m = error_of("exports:\n  - name: a\n    clone: { source: /s, metadata: /m }\n");
  EXPECT_HAS(m, "test.yaml:3:12: exports[0].clone: missing required key 'destination'");
  m = error_of("exports:\n  - name: a\n");
  EXPECT_HAS(m, "exports[0]: needs 'path' (a plain export) or 'clone'");
  EXPECT_HAS(error_of(""), "the configuration is empty");
  EXPECT_HAS(error_of("exports: []\n"), "test.yaml:1:10: exports: expected a non-empty list");
}

TEST(ServerConfigErrors, EmptyValue) {
  std::string m = error_of("exports:\n  - name: a\n    path:\n");
  EXPECT_HAS(m, "exports[0].path: needs a value");
}

TEST(ServerConfigErrors, BadSize) {
  std::string m = error_of(R"(exports:
  - name: a
    clone:
      source: /s
      destination: /d
      metadata: /m
      region_size: 64KB
)");
  EXPECT_HAS(m, "test.yaml:7:20: exports[0].clone.region_size: '64KB' is not a size");
  EXPECT_HAS(m, "KiB, MiB, GiB or TiB");
}

TEST(ServerConfigErrors, SizeOutOfRangeOrNotAPowerOfTwo) {
  std::string base =
      "exports:\n  - name: a\n    clone:\n      source: /s\n      destination: /d\n"
      "      metadata: /m\n";
  std::string m = error_of(base + "      region_size: 2GiB\n");
  EXPECT_HAS(m, "test.yaml:7:20: exports[0].clone.region_size: '2GiB' is out of range");
  EXPECT_HAS(m, "4KiB to 1GiB");
  m = error_of(base + "      region_size: 96KiB\n");
  EXPECT_HAS(m, "exports[0].clone.region_size: '96KiB' is not a power of two");
  m = error_of(base + "      region_size: 1MiB\n      fetch_window: 256KiB\n");
}

// The rules between settings (config/clone_schema.h) name a key the user wrote: the smaller
// one, or the larger one when only that was given.
TEST(ServerConfigErrors, SettingsThatContradictEachOther) {
  std::string base =
      "exports:\n  - name: a\n    clone:\n      source: nbd://h/e\n      destination: /d\n"
      "      metadata: /m\n";
  std::string m = error_of(base + "      region_size: 1MiB\n      fetch_window: 256KiB\n");
  EXPECT_HAS(m,
             "test.yaml:8:21: exports[0].clone.fetch_window: fetch_window (256KiB) is smaller "
             "than region_size (1MiB); a fetch must cover at least one region");
  m = error_of(base + "      region_size: 1MiB\n");
  EXPECT_HAS(m,
             "test.yaml:7:20: exports[0].clone.region_size: fetch_window (128KiB) is smaller "
             "than region_size (1MiB)");
  m = error_of(base + "      hydration: { batch: 8MiB, max_inflight: 4MiB }\n");
  EXPECT_HAS(m,
             "exports[0].clone.hydration.max_inflight: max_inflight (4MiB) is smaller than "
             "batch (8MiB); expected at least one batch in flight");
  m = error_of(base +
               "      region_size: 8MiB\n      fetch_window: 8MiB\n"
               "      hydration: { batch: 4MiB }\n");
  EXPECT_HAS(m,
             "exports[0].clone.hydration.batch: batch (4MiB) is smaller than region_size "
             "(8MiB); a batch fetches whole regions");
  m = error_of(
      "exports:\n  - name: a\n    clone:\n      source: /s\n      destination: /d\n"
      "      metadata: /m\n      discard_source_after_commit: true\n");
  EXPECT_HAS(m,
             "test.yaml:7:36: exports[0].clone.discard_source_after_commit: needs an NBD "
             "source; the file source /s is opened read-only");
}

TEST(ServerConfigErrors, BadDuration) {
  std::string m = error_of("handshake_timeout: 30\nexports: [ { name: a, path: /a } ]\n");
  EXPECT_HAS(m, "test.yaml:1:20: handshake_timeout: '30' is not a duration");
  EXPECT_HAS(m, "ms, s, m or h");
  m = error_of("handshake_timeout: 2h\nexports: [ { name: a, path: /a } ]\n");
  EXPECT_HAS(m, "handshake_timeout: '2h' is out of range; expected 100ms to 1h");
}

TEST(ServerConfigErrors, BadRate) {
  std::string m = error_of(
      "exports:\n  - name: a\n    clone: { source: /s, destination: /d, metadata: /m,"
      " hydration: { rate: fast } }\n");
  EXPECT_HAS(m, "exports[0].clone.hydration.rate: 'fast' is not a rate");
}

TEST(ServerConfigErrors, BadBooleanAndInteger) {
  std::string m = error_of("exports:\n  - name: a\n    path: /a\n    readonly: yes please\n");
  EXPECT_HAS(m, "test.yaml:4:15: exports[0].readonly: 'yes please' is not a boolean");
  m = error_of("threads: many\nexports: [ { name: a, path: /a } ]\n");
  EXPECT_HAS(m,
             "test.yaml:1:10: threads: 'many' is out of range; expected a whole number from "
             "0 to 256");
  m = error_of("threads: 1000\nexports: [ { name: a, path: /a } ]\n");
  EXPECT_HAS(m, "threads: '1000' is out of range");
}

TEST(ServerConfigErrors, WrongNodeKind) {
  std::string m = error_of("exports:\n  name: a\n");
  EXPECT_HAS(m, "exports: expected a non-empty list of exports, found a map");
  m = error_of("exports:\n  - name: [a, b]\n    path: /a\n");
  EXPECT_HAS(m, "test.yaml:2:11: exports[0].name: expected a string, found a list");
}

TEST(ServerConfigErrors, BadListenAddress) {
  std::string m = error_of(
      "listen: [ 'tcp://127.0.0.1:10809', 'http://x' ]\n"
      "exports: [ { name: a, path: /a } ]\n");
  EXPECT_HAS(m, "test.yaml:1:36: listen[1]: 'http://x': unknown listen address form");
  EXPECT_HAS(error_of("listen: 'tcp://127.0.0.1:99999'\nexports: [ { name: a, path: /a } ]\n"),
             "listen: 'tcp://127.0.0.1:99999': port 99999 is above 65535");
  EXPECT_HAS(error_of("listen: 'tcp://::1:10809'\nexports: [ { name: a, path: /a } ]\n"),
             "needs brackets");
}

TEST(ServerConfigErrors, BadSource) {
  std::string m = error_of(
      "exports:\n  - name: a\n    clone: { source: 'http://x/y', destination: /d, metadata: /m "
      "}\n");
  EXPECT_HAS(m, "exports[0].clone.source: unsupported scheme 'http://'");
  m = error_of(
      "exports:\n  - name: a\n    clone: { source: { nbdkit: [] }, destination: /d, "
      "metadata: /m }\n");
  EXPECT_HAS(m, "exports[0].clone.source.nbdkit: expected a non-empty list");
  m = error_of(
      "exports:\n  - name: a\n    clone: { source: { qemu: x }, destination: /d, "
      "metadata: /m }\n");
  EXPECT_HAS(m, "exports[0].clone.source.qemu: unknown key");
}

TEST(ServerConfigErrors, PathAndCloneTogether) {
  std::string m = error_of(
      "exports:\n  - name: a\n    path: /a\n    clone: { source: /s, "
      "destination: /d, metadata: /m }\n");
  EXPECT_HAS(m, "test.yaml:2:5: exports[0]: has both 'path' and 'clone'");
}

TEST(ServerConfigErrors, DuplicateExportNames) {
  std::string m = error_of(
      "exports:\n  - name: a\n    path: /a\n  - name: b\n    path: /b\n"
      "  - name: a\n    path: /c\n");
  EXPECT_HAS(m, "test.yaml:6:5: export name 'a' is used twice (first at test.yaml:2:5)");
}

TEST(ServerConfigErrors, TwoDefaultExports) {
  std::string m = error_of(
      "exports:\n  - { name: a, path: /a, default: true }\n"
      "  - { name: b, path: /b, default: true }\n");
  EXPECT_HAS(m, "at most one export can be the default");
}

TEST(ServerConfigErrors, BadTls) {
  std::string m = error_of("tls: { mode: maybe }\nexports: [ { name: a, path: /a } ]\n");
  EXPECT_HAS(m,
             "test.yaml:1:14: tls.mode: 'maybe' is not a TLS mode; expected off, on or "
             "require");
  m = error_of("tls: { mode: require }\nexports: [ { name: a, path: /a } ]\n");
  EXPECT_HAS(m, "tls: TLS mode on/require needs 'certificates'");
}

TEST(ServerConfigErrors, BadNameLength) {
  std::string m = error_of("exports: [ { name: '', path: /a } ]\n");
  EXPECT_HAS(m, "exports[0].name: expected 1 to 4096 bytes, found 0");
}

TEST(ServerConfigFile, LoadsFromDiskAndReportsUnreadableFiles) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("hydrate-config-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::string file = (dir / "serve.yaml").string();
  {
    std::ofstream out(file);
    out << "exports:\n  - name: a\n    path: a.img\n";
  }
  ServerConfig c = load_server_config(file);
  EXPECT_EQ(c.exports[0].path, (dir / "a.img").string());
  {
    std::ofstream out(file);
    out << "exports:\n  - name: a\n    path: a.img\n    colour: blue\n";
  }
  try {
    load_server_config(file);
    ADD_FAILURE() << "accepted an unknown key";
  } catch (const ConfigError& e) {
    EXPECT_HAS(e.what(), file + ":4:5: exports[0].colour: unknown key");
  }
  std::filesystem::remove_all(dir);
  try {
    load_server_config(file);
    ADD_FAILURE() << "read a missing file";
  } catch (const ConfigError& e) {
    EXPECT_HAS(e.what(), file + ": cannot read the configuration");
  }
}

TEST(ServerConfigFile, ExampleInTheRepositoryIsValid) {
  std::filesystem::path example =
      std::filesystem::path(__FILE__).parent_path() / "../../../config/hydrate.example.yaml";
  ServerConfig c = load_server_config(example.lexically_normal().string());
  EXPECT_GE(c.exports.size(), 2u);
  bool has_clone = false, has_plain = false;
  for (const ExportConfig& e : c.exports) (e.clone ? has_clone : has_plain) = true;
  EXPECT_TRUE(has_clone && has_plain);
}

// The configuration checks listen addresses with the server's own grammar
// (nbd-server/listen_address.h): what one accepts, the other does.
TEST(ServerConfig, ListenAddressesFollowTheServerGrammar) {
  for (const char* good :
       {"tcp://127.0.0.1:10809", "tcp://127.0.0.1:10809/", "tcp://localhost", "tcp://[::1]:0",
        "tcp://[::]/", "tcp://:10809", "tcp://*:10809", "unix:/run/x.sock", "unix:///run/x.sock"}) {
    ServerConfig c =
        parse("listen: '" + std::string(good) + "'\nexports: [ { name: a, path: /a } ]\n");
    EXPECT_EQ(c.listen, std::vector<std::string>{good});
  }
  for (const char* bad : {"", "tcp://", "tcp://h:", "tcp://h:x", "udp://h:1", "unix:", "tcp://[::1",
                          "tcp://h:1/path", "tcp://h/path", "/run/x.sock"})
    EXPECT_HAS(error_of("listen: '" + std::string(bad) + "'\nexports: [ { name: a, path: /a } ]\n"),
               "test.yaml:1:9: listen: '" + std::string(bad) + "': ");
}

TEST(ServerConfig, TrailingSlashAfterATcpAddressIsAccepted) {
  ServerConfig c =
      parse("listen: [ 'tcp://127.0.0.1:10809/' ]\nexports: [ { name: a, path: /a } ]\n");
  EXPECT_EQ(c.listen, std::vector<std::string>{"tcp://127.0.0.1:10809/"});
}

TEST(ServerConfig, RelativeUnixSocketPathsAreRelativeToTheFile) {
  ServerConfig c = parse(
      "listen: [ 'unix:run/nbd.sock', 'unix:///abs.sock' ]\n"
      "exports: [ { name: a, path: /a } ]\n");
  EXPECT_EQ(c.listen,
            (std::vector<std::string>{"unix:/etc/hydrate/run/nbd.sock", "unix:///abs.sock"}));
}

// Boot profile keys (docs/profile-format.md): the top-level `profile:` map gives every clone its
// defaults, a clone's own `profile:` overrides them, paths resolve like metadata.
const std::string kProfileClone = R"(
exports:
  - name: a
    clone: { source: nbd://h/a, destination: a.img, metadata: /var/a.meta }
)";

TEST(ProfileConfig, WithoutProfileDirACloneRecordsNextToItsMetadata) {
  ServerConfig c = parse(kProfileClone);
  const ProfileSettings& p = c.exports[0].clone->settings.profile;
  EXPECT_TRUE(p.record);
  EXPECT_EQ(p.file, "/var/a.meta.hprof");
  EXPECT_EQ(p.dir, "");
  EXPECT_EQ(p.record_limit_bytes, 2ull << 30);
  EXPECT_EQ(p.record_time, std::chrono::minutes(10));
  EXPECT_TRUE(p.prefetch.empty());
}

TEST(ProfileConfig, TopLevelProfileGivesEveryCloneItsDirAndLimits) {
  ServerConfig c =
      parse("profile: { dir: profiles, record_limit: 1GiB, record_time: 5m }\n" + kProfileClone);
  const ProfileSettings& p = c.exports[0].clone->settings.profile;
  EXPECT_EQ(p.dir, "/etc/hydrate/profiles");
  EXPECT_EQ(p.file, "") << "named by source identity inside dir";
  EXPECT_EQ(p.record_limit_bytes, 1ull << 30);
  EXPECT_EQ(p.record_time, std::chrono::minutes(5));
  EXPECT_EQ(c.profile.dir, "/etc/hydrate/profiles");
}

TEST(ProfileConfig, ACloneOverridesTheTopLevelProfile) {
  ServerConfig c = parse(R"(
profile: { dir: /p, record_limit: 1GiB, record_time: 5m }
exports:
  - name: a
    clone:
      source: nbd://h/a
      destination: a.img
      metadata: a.meta
      profile: { record: false, record_limit: 64MiB, record_time: 30s, file: mine.hprof }
      hydration: { prefetch: [ boot.hprof, /abs/other.hprof ] }
)");
  const ProfileSettings& p = c.exports[0].clone->settings.profile;
  EXPECT_FALSE(p.record);
  EXPECT_EQ(p.record_limit_bytes, 64ull << 20);
  EXPECT_EQ(p.record_time, std::chrono::seconds(30));
  EXPECT_EQ(p.file, "/etc/hydrate/mine.hprof");
  EXPECT_EQ(p.dir, "/p");
  EXPECT_EQ(p.prefetch, (std::vector<std::string>{"/etc/hydrate/boot.hprof", "/abs/other.hprof"}));
}

TEST(ProfileConfig, UnknownOrMalformedProfileKeysAreRefusedNamingTheKey) {
  EXPECT_NE(error_of("profile: { folder: /p }\n" + kProfileClone).find("folder"), std::string::npos);
  EXPECT_NE(error_of("profile: { record_limit: lots }\n" + kProfileClone).find("profile.record_limit"),
            std::string::npos);
  std::string e = error_of(R"(
exports:
  - name: a
    clone:
      source: nbd://h/a
      destination: a.img
      metadata: a.meta
      hydration: { prefetch: boot.hprof }
)");
  EXPECT_NE(e.find("hydration.prefetch"), std::string::npos) << e;
  EXPECT_NE(e.find("list of profile files"), std::string::npos) << e;
  e = error_of(R"(
exports:
  - name: a
    clone: { source: nbd://h/a, destination: a.img, metadata: a.meta, profile: { dir: /x } }
)");
  EXPECT_NE(e.find("dir"), std::string::npos) << e;
}

}  // namespace
}  // namespace hydrate::config
