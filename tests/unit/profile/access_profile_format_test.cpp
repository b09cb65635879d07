// The boot profile format (docs/profile-format.md): round trip, and the loader refusing every
// kind of bad input with a reason that names the file.
#include "engine/profile/access_profile_format.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

namespace hydrate {
namespace {

namespace fs = std::filesystem;
namespace pf = profile_format;

AccessProfile sample() {
  AccessProfile p;
  p.source_size = 10u << 20;  // 160 regions of 64 KiB
  p.region_size = 64u << 10;
  p.source_identity = "nbd://backup/vm1";
  p.runs = {{100, 4}, {3, 1}, {159, 1}, {0, 2}};
  return p;
}

void put32(std::vector<std::byte>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>(v >> (8 * i));
}
void put64(std::vector<std::byte>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<std::byte>(v >> (8 * i));
}

class ProfileFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("hydrate-profile-test-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string write_bytes(const std::string& name, const std::vector<std::byte>& bytes) {
    std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  // The loader's reason for `bytes`, which must name the file.
  std::string refusal(const std::vector<std::byte>& bytes) {
    std::string path = write_bytes("p.hprof", bytes);
    AccessProfile out;
    std::string why = load_profile(path, out);
    EXPECT_NE(why.find(path), std::string::npos) << "reason does not name the file: " << why;
    return why;
  }
  fs::path dir;
};

TEST(ProfileFormat, RoundTripKeepsEveryField) {
  AccessProfile p = sample();
  AccessProfile back;
  ASSERT_EQ(decode_profile(encode_profile(p), back), "");
  EXPECT_EQ(back.source_size, p.source_size);
  EXPECT_EQ(back.region_size, p.region_size);
  EXPECT_EQ(back.source_identity, p.source_identity);
  EXPECT_EQ(back.runs, p.runs);
  EXPECT_EQ(back.regions(), 8u);
}

TEST(ProfileFormat, EmptyProfileRoundTrips) {
  AccessProfile p = sample();
  p.runs.clear();
  AccessProfile back;
  ASSERT_EQ(decode_profile(encode_profile(p), back), "");
  EXPECT_TRUE(back.runs.empty());
}

TEST(ProfileFormat, LayoutIsLittleEndianWithMagicFirst) {
  std::vector<std::byte> b = encode_profile(sample());
  EXPECT_EQ(std::memcmp(b.data(), pf::kMagic, 8), 0);
  EXPECT_EQ(static_cast<uint8_t>(b[8]), pf::kVersion);  // version, low byte first
  EXPECT_EQ(b.size(), pf::kHeaderSize + sample().source_identity.size() + 4 * pf::kRunSize);
}

TEST_F(ProfileFile, LoaderRefusesTruncatedFile) {
  std::vector<std::byte> b = encode_profile(sample());
  b.resize(b.size() - 3);
  EXPECT_NE(refusal(b).find("truncated"), std::string::npos);
  b.resize(10);
  EXPECT_NE(refusal(b).find("truncated"), std::string::npos);
}

TEST_F(ProfileFile, LoaderRefusesCorruptChecksum) {
  std::vector<std::byte> b = encode_profile(sample());
  b[b.size() - 9] ^= std::byte{0x40};  // a run's count
  EXPECT_NE(refusal(b).find("checksum mismatch"), std::string::npos);
}

TEST_F(ProfileFile, LoaderRefusesBadMagic) {
  std::vector<std::byte> b = encode_profile(sample());
  b[0] = std::byte{'X'};
  EXPECT_NE(refusal(b).find("bad magic"), std::string::npos);
}

TEST_F(ProfileFile, LoaderRefusesUnknownVersion) {
  std::vector<std::byte> b = encode_profile(sample());
  put32(b, 8, 2);
  EXPECT_NE(refusal(b).find("unsupported version 2"), std::string::npos);
}

// Hostile contents with a valid checksum: encode_profile writes whatever it is given.
TEST_F(ProfileFile, LoaderRefusesRegionsOutsideTheSource) {
  AccessProfile p = sample();
  p.runs = {{150, 20}};  // 150..169 of 160 regions
  EXPECT_NE(refusal(encode_profile(p)).find("lies outside the source's 160 regions"),
            std::string::npos);
  p.runs = {{UINT64_MAX - 1, 5}};  // first + count wraps
  EXPECT_NE(refusal(encode_profile(p)).find("lies outside"), std::string::npos);
  p.runs = {{5, 0}};
  EXPECT_NE(refusal(encode_profile(p)).find("lies outside"), std::string::npos);
}

TEST_F(ProfileFile, LoaderRefusesARegionRecordedTwice) {
  AccessProfile p = sample();
  p.runs = {{10, 5}, {12, 1}};
  EXPECT_NE(refusal(encode_profile(p)).find("region 12 appears twice"), std::string::npos);
}

TEST_F(ProfileFile, LoaderRefusesInvalidRegionSize) {
  AccessProfile p = sample();
  p.region_size = 3000;
  EXPECT_NE(refusal(encode_profile(p)).find("region size 3000"), std::string::npos);
}

TEST_F(ProfileFile, LoaderRefusesImpossibleCounts) {
  std::vector<std::byte> b = encode_profile(sample());
  put64(b, 32, UINT64_MAX);  // run count (checked before the checksum: it sizes the file)
  EXPECT_NE(refusal(b).find("run count"), std::string::npos);
  std::vector<std::byte> c = encode_profile(sample());
  put32(c, 28, 1u << 20);  // identity length
  EXPECT_NE(refusal(c).find("identity length"), std::string::npos);
}

TEST_F(ProfileFile, LoaderRefusesMissingFileNamingIt) {
  AccessProfile out;
  std::string path = (dir / "absent.hprof").string();
  std::string why = load_profile(path, out);
  EXPECT_NE(why.find(path), std::string::npos);
  EXPECT_NE(why.find("cannot open"), std::string::npos);
}

TEST(ProfileFormat, MismatchNamesSourceSizeOrRegionSize) {
  AccessProfile p = sample();
  EXPECT_EQ(profile_mismatch(p, p.source_size, p.region_size), "");
  std::string size = profile_mismatch(p, p.source_size + 1, p.region_size);
  EXPECT_NE(size.find(std::to_string(p.source_size)), std::string::npos) << size;
  EXPECT_NE(size.find(std::to_string(p.source_size + 1)), std::string::npos) << size;
  std::string region = profile_mismatch(p, p.source_size, 4096);
  EXPECT_NE(region.find("region size 65536"), std::string::npos) << region;
}

TEST_F(ProfileFile, WriteIsAtomicAndLeavesNoTemporary) {
  std::string path = (dir / "w.hprof").string();
  write_bytes("w.hprof", std::vector<std::byte>(5, std::byte{1}));  // an old, broken file
  ASSERT_EQ(write_profile_file(path, sample()), "");
  AccessProfile back;
  ASSERT_EQ(load_profile(path, back), "");
  EXPECT_EQ(back.runs, sample().runs);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(ProfileFile, WriteFailureNamesTheFile) {
  std::string path = (dir / "missing-dir" / "w.hprof").string();
  std::string why = write_profile_file(path, sample());
  EXPECT_NE(why.find(path), std::string::npos) << why;
}

TEST(ProfileFormat, FileNameIsStablePerIdentityAndDistinct) {
  std::string a = profile_file_name("nbd://backup/vm1");
  EXPECT_EQ(a, profile_file_name("nbd://backup/vm1"));
  EXPECT_NE(a, profile_file_name("nbd://backup/vm2"));
  // Same readable part, different identities: the hash keeps them apart.
  EXPECT_NE(profile_file_name("a/b"), profile_file_name("a:b"));
  EXPECT_EQ(a.rfind("nbd_backup_vm1-", 0), 0u) << a;
  EXPECT_TRUE(a.ends_with(".hprof"));
  EXPECT_EQ(a.find('/'), std::string::npos);
  EXPECT_NE(profile_file_name("..")[0], '.');
}

}  // namespace
}  // namespace hydrate
