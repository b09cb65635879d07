// `hydrate meta create|check|dump` against real files, through the built binary. The binary is
// $HYDRATE_BIN, or cli/hydrate next to this test's build directory; without it the tests are
// skipped (build the `hydrate` target).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "engine/file_block_device.h"
#include "engine/metadata_store.h"
#include "tests/unit/metadata/metadata_test_util.h"

namespace hydrate {
namespace {

namespace fs = std::filesystem;
using test::contains;

std::string hydrate_binary() {
  if (const char* env = std::getenv("HYDRATE_BIN")) return env;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  fs::path candidate = self.parent_path().parent_path() / "cli" / "hydrate";
  return fs::exists(candidate) ? candidate.string() : std::string();
}

std::string quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct CliRun {
  int status = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

class MetaCli : public ::testing::Test {
 protected:
  void SetUp() override {
    binary = hydrate_binary();
    if (binary.empty()) GTEST_SKIP() << "hydrate binary not built; set HYDRATE_BIN";
    char pattern[] = "/tmp/hydrate-meta-cli-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir = pattern;
    path = (dir / "clone.meta").string();
  }
  void TearDown() override {
    if (!dir.empty()) fs::remove_all(dir);
  }

  // Runs `hydrate meta ARGS` under a timeout; stdout and stderr go to files in the temp dir.
  CliRun meta(const std::string& args) {
    const std::string out = (dir / "stdout").string(), err = (dir / "stderr").string();
    std::string command =
        "timeout 60 " + quote(binary) + " meta " + args + " >" + quote(out) + " 2>" + quote(err);
    int raw = std::system(command.c_str());
    CliRun run;
    run.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    run.out = slurp(out);
    run.err = slurp(err);
    return run;
  }
  static std::string slurp(const std::string& file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void flip_byte(uint64_t offset) {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    file.read(&c, 1);
    c = static_cast<char>(c ^ 0xff);
    file.seekp(static_cast<std::streamoff>(offset));
    file.write(&c, 1);
  }
  CliRun create_default() {
    return meta("create " + quote(path) +
                " --source-size 1G --region-size 64K --source-identity nbd://backup/vm1");
  }

  std::string binary;
  fs::path dir;
  std::string path;
};

TEST_F(MetaCli, CreateThenCheck) {
  CliRun created = create_default();
  ASSERT_EQ(created.status, 0) << created.err;
  EXPECT_TRUE(contains(created.out, "created clone")) << created.out;
  EXPECT_TRUE(contains(created.out, "16384 regions of 65536 bytes")) << created.out;
  EXPECT_EQ(fs::file_size(path), 8192u + 4096u);

  CliRun checked = meta("check " + quote(path));
  ASSERT_EQ(checked.status, 0) << checked.err;
  EXPECT_TRUE(contains(checked.out, path + ": ok: clone ")) << checked.out;
  EXPECT_TRUE(contains(checked.out, "generation 1 in slot 0")) << checked.out;
  EXPECT_TRUE(contains(checked.out, "source \"nbd://backup/vm1\" of 1073741824 bytes"))
      << checked.out;
  EXPECT_TRUE(contains(checked.out, "hydrated 0/16384 (0.0%)")) << checked.out;
  EXPECT_EQ(std::count(checked.out.begin(), checked.out.end(), '\n'), 1);
}

TEST_F(MetaCli, CheckWithExpectationsGivesTheEnginesRefusal) {
  ASSERT_EQ(create_default().status, 0);
  CliRun matching = meta("check " + quote(path) + " --source-size 1G --region-size 64K");
  EXPECT_EQ(matching.status, 0) << matching.err;
  CliRun differs = meta("check " + quote(path) + " --source-size 2G");
  EXPECT_EQ(differs.status, 1);
  EXPECT_TRUE(contains(differs.err, "metadata " + path +
                                        ": source size differs: metadata says 1073741824, "
                                        "source has 2147483648"))
      << differs.err;
  CliRun identity = meta("check " + quote(path) + " --source-identity nbd://other");
  EXPECT_EQ(identity.status, 1);
  EXPECT_TRUE(contains(identity.err, "source identity differs")) << identity.err;
}

TEST_F(MetaCli, CreateRefusesToOverwriteACloneWithoutForce) {
  ASSERT_EQ(create_default().status, 0);
  CliRun again = create_default();
  EXPECT_EQ(again.status, 1);
  EXPECT_TRUE(contains(again.err, "already holds hydrate metadata")) << again.err;
  CliRun forced =
      meta("create " + quote(path) +
           " --source-size 2G --region-size 1M --source-identity file:/dev/sdb --force");
  EXPECT_EQ(forced.status, 0) << forced.err;
  CliRun checked = meta("check " + quote(path) + " --source-size 2G");
  EXPECT_EQ(checked.status, 0) << checked.err;
}

TEST_F(MetaCli, CreateRefusesToFormatAFileHoldingOtherData) {
  {
    std::ofstream disk(path, std::ios::binary);
    disk << "a file system, not metadata";
  }
  CliRun refused = create_default();
  EXPECT_EQ(refused.status, 1);
  EXPECT_TRUE(contains(refused.err, "is not empty and holds no hydrate metadata")) << refused.err;
  EXPECT_EQ(fs::file_size(path), 27u);                              // untouched
  std::ofstream(path, std::ios::binary | std::ios::trunc).close();  // empty: fine to format
  CliRun created = create_default();
  EXPECT_EQ(created.status, 0) << created.err;
}

TEST_F(MetaCli, BadArgumentsAreNamed) {
  CliRun missing = meta("create " + quote(path) + " --region-size 64K --source-identity x");
  EXPECT_EQ(missing.status, 2);
  EXPECT_TRUE(contains(missing.err, "--source-size is required")) << missing.err;
  CliRun bad_size = meta("create " + quote(path) +
                         " --source-size 12X --region-size 64K "
                         "--source-identity x");
  EXPECT_EQ(bad_size.status, 2);
  EXPECT_TRUE(contains(bad_size.err, "--source-size: '12X' has an unknown unit")) << bad_size.err;
  CliRun bad_region = meta("create " + quote(path) +
                           " --source-size 1G --region-size 3000 "
                           "--source-identity x");
  EXPECT_EQ(bad_region.status, 1);
  EXPECT_TRUE(contains(bad_region.err, "region size 3000 is not a power of two")) << bad_region.err;
  EXPECT_FALSE(fs::exists(path));  // nothing created for a refused geometry
  CliRun unknown = meta("dump " + quote(path) + " --verbose");
  EXPECT_EQ(unknown.status, 2);
  EXPECT_TRUE(contains(unknown.err, "unknown option '--verbose'")) << unknown.err;
  CliRun no_path = meta("check");
  EXPECT_EQ(no_path.status, 2);
  EXPECT_TRUE(contains(no_path.err, "which metadata PATH?")) << no_path.err;
}

TEST_F(MetaCli, CheckNamesTheProblem) {
  CliRun absent = meta("check " + quote(path));
  EXPECT_EQ(absent.status, 1);
  EXPECT_TRUE(contains(absent.err, path + ": open read-only failed")) << absent.err;

  ASSERT_EQ(create_default().status, 0);
  flip_byte(300);  // slot 0 (generation 1): falls back to slot 1
  CliRun fallback = meta("check " + quote(path));
  EXPECT_EQ(fallback.status, 0) << fallback.err;
  EXPECT_TRUE(contains(fallback.out, "generation 0 in slot 1")) << fallback.out;
  EXPECT_TRUE(contains(fallback.out, "(other slot 0: bad checksum")) << fallback.out;

  flip_byte(4096 + 300);
  CliRun both = meta("check " + quote(path));
  EXPECT_EQ(both.status, 1);
  EXPECT_TRUE(contains(both.err, "bad checksum in both superblock slots")) << both.err;

  fs::resize_file(path, 8192);
  flip_byte(300);
  flip_byte(4096 + 300);
  CliRun truncated = meta("check " + quote(path));
  EXPECT_EQ(truncated.status, 1);
  EXPECT_TRUE(contains(truncated.err, "truncated: the device is 8192 bytes")) << truncated.err;
}

TEST_F(MetaCli, DumpShowsBothSlotsAndHydratedRanges) {
  ASSERT_EQ(create_default().status, 0);
  {
    // Commit some regions through the engine, on the real file.
    std::unique_ptr<FileBlockDevice> device;
    ASSERT_TRUE(FileBlockDevice::open(path, {}, device));
    CloneGeometry geometry{uint64_t{1} << 30, uint64_t{1} << 30, 65536, "nbd://backup/vm1"};
    std::unique_ptr<RegionMap> map;
    std::unique_ptr<MetadataStore> store;
    IoResult opened = run_to_completion(
        MetadataStore::open(*device, MetadataExpectations::exactly(geometry), map, store));
    ASSERT_TRUE(opened) << opened.message;
    map->set(0, 10);
    map->set(16383, 1);
    IoResult committed = test::commit_transaction(*map, *store);
    ASSERT_TRUE(committed) << committed.message;
  }
  CliRun text = meta("dump " + quote(path) + " --regions");
  ASSERT_EQ(text.status, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "active slot: 1")) << text.out;
  EXPECT_TRUE(contains(text.out, "slot 0: valid")) << text.out;
  EXPECT_TRUE(contains(text.out, "hydrated: 11 of 16384 regions (0.1%)")) << text.out;
  EXPECT_TRUE(contains(text.out, "regions 0-9: bytes 0-655359")) << text.out;
  EXPECT_TRUE(contains(text.out, "regions 16383-16383: bytes 1073676288-1073741823")) << text.out;

  CliRun json_run = meta("dump " + quote(path) + " --json --regions");
  ASSERT_EQ(json_run.status, 0) << json_run.err;
  nlohmann::json dump = nlohmann::json::parse(json_run.out);
  EXPECT_EQ(dump["valid"], true);
  EXPECT_EQ(dump["active_slot"], 1);
  ASSERT_EQ(dump["slots"].size(), 2u);
  EXPECT_EQ(dump["slots"][0]["generation"], 1);
  EXPECT_EQ(dump["slots"][1]["generation"], 2);
  EXPECT_EQ(dump["slots"][1]["committed_regions"], 11);
  EXPECT_EQ(dump["slots"][0]["clone_uuid"], dump["slots"][1]["clone_uuid"]);
  EXPECT_EQ(dump["hydrated_regions"], 11);
  ASSERT_EQ(dump["hydrated_ranges"].size(), 2u);
  EXPECT_EQ(dump["hydrated_ranges"][1]["first_region"], 16383);
  EXPECT_EQ(dump["hydrated_ranges"][1]["length"], 65536);

  flip_byte(0);
  flip_byte(4096);
  CliRun broken = meta("dump " + quote(path) + " --json");
  EXPECT_EQ(broken.status, 1);
  nlohmann::json broken_dump = nlohmann::json::parse(broken.out);
  EXPECT_EQ(broken_dump["valid"], false);
  EXPECT_TRUE(contains(broken_dump["error"].get<std::string>(), "not hydrate metadata"));
  EXPECT_EQ(broken_dump["slots"][0]["status"], "bad magic");
}

}  // namespace
}  // namespace hydrate
