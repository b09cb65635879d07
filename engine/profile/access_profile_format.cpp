#include "engine/profile/access_profile_format.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/region_size.h"

namespace hydrate {
namespace {

using namespace profile_format;

// Header offsets (docs/profile-format.md).
constexpr size_t kOffVersion = 8;
constexpr size_t kOffChecksum = 12;
constexpr size_t kOffSourceSize = 16;
constexpr size_t kOffRegionSize = 24;
constexpr size_t kOffIdentityLength = 28;
constexpr size_t kOffRunCount = 32;
constexpr size_t kOffRegionTotal = 40;

void put32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
void put64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
uint32_t get32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
uint64_t get64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// crc32 (zlib) over the whole file, skipping the checksum field.
uint32_t checksum_of(std::span<const std::byte> bytes) {
  auto data = reinterpret_cast<const Bytef*>(bytes.data());
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, data, kOffChecksum);
  size_t after = kOffChecksum + 4;
  // Files are bounded by kMaxFileSize, far below uInt's range.
  crc = crc32(crc, data + after, static_cast<uInt>(bytes.size() - after));
  return static_cast<uint32_t>(crc);
}

std::string errno_text(int e) {
  return std::strerror(e);
}

}  // namespace

uint64_t AccessProfile::regions() const {
  uint64_t n = 0;
  for (const ProfileRun& r : runs) n += r.count;
  return n;
}

uint64_t AccessProfile::region_count_of_source() const {
  if (region_size == 0) return 0;
  return source_size / region_size + (source_size % region_size != 0 ? 1 : 0);
}

std::vector<std::byte> encode_profile(const AccessProfile& profile) {
  std::vector<std::byte> out(kHeaderSize + profile.source_identity.size() +
                             profile.runs.size() * kRunSize);
  std::memcpy(out.data(), kMagic, sizeof kMagic);
  put32(out.data() + kOffVersion, kVersion);
  put64(out.data() + kOffSourceSize, profile.source_size);
  put32(out.data() + kOffRegionSize, profile.region_size);
  put32(out.data() + kOffIdentityLength, static_cast<uint32_t>(profile.source_identity.size()));
  put64(out.data() + kOffRunCount, profile.runs.size());
  put64(out.data() + kOffRegionTotal, profile.regions());
  std::memcpy(out.data() + kHeaderSize, profile.source_identity.data(),
              profile.source_identity.size());
  std::byte* p = out.data() + kHeaderSize + profile.source_identity.size();
  for (const ProfileRun& run : profile.runs) {
    put64(p, run.first);
    put64(p + 8, run.count);
    p += kRunSize;
  }
  put32(out.data() + kOffChecksum, checksum_of(out));
  return out;
}

std::string decode_profile(std::span<const std::byte> bytes, AccessProfile& out) {
  if (bytes.size() < kHeaderSize)
    return "truncated: " + std::to_string(bytes.size()) + " bytes, the header alone needs " +
           std::to_string(kHeaderSize);
  if (bytes.size() > kMaxFileSize)
    return "too large: " + std::to_string(bytes.size()) + " bytes, at most " +
           std::to_string(kMaxFileSize);
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) return "bad magic: not a profile";
  const std::byte* h = bytes.data();
  if (uint32_t v = get32(h + kOffVersion); v != kVersion)
    return "unsupported version " + std::to_string(v) + " (this build reads " +
           std::to_string(kVersion) + ")";
  const uint32_t identity_length = get32(h + kOffIdentityLength);
  if (identity_length > kMaxIdentity)
    return "source identity length " + std::to_string(identity_length) + " exceeds " +
           std::to_string(kMaxIdentity);
  const uint64_t run_count = get64(h + kOffRunCount);
  // Bounded before multiplying, so the expected size cannot overflow.
  if (run_count > kMaxFileSize / kRunSize)
    return "run count " + std::to_string(run_count) + " is impossibly large";
  const uint64_t expected = kHeaderSize + identity_length + run_count * kRunSize;
  if (bytes.size() != expected)
    return std::string(bytes.size() < expected ? "truncated" : "trailing bytes") + ": " +
           std::to_string(bytes.size()) + " bytes, the header says " + std::to_string(expected);
  if (uint32_t stored = get32(h + kOffChecksum), actual = checksum_of(bytes); stored != actual)
    return "checksum mismatch: stored " + std::to_string(stored) + ", computed " +
           std::to_string(actual);

  AccessProfile p;
  p.source_size = get64(h + kOffSourceSize);
  p.region_size = get32(h + kOffRegionSize);
  if (std::string why = region_size_problem(p.region_size); !why.empty())
    return "region size " + std::to_string(p.region_size) + " " + why;
  if (p.source_size == 0) return "source size is 0";
  p.source_identity.assign(reinterpret_cast<const char*>(h + kHeaderSize), identity_length);
  const uint64_t regions = p.region_count_of_source();
  const uint64_t region_total = get64(h + kOffRegionTotal);
  if (region_total > regions)
    return "region total " + std::to_string(region_total) + " exceeds the source's " +
           std::to_string(regions) + " regions";
  p.runs.reserve(run_count);
  const std::byte* r = h + kHeaderSize + identity_length;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < run_count; ++i, r += kRunSize) {
    ProfileRun run{get64(r), get64(r + 8)};
    // Written as subtraction so a hostile first + count cannot wrap around.
    if (run.count == 0 || run.first >= regions || run.count > regions - run.first)
      return "run " + std::to_string(i) + " (first region " + std::to_string(run.first) +
             ", count " + std::to_string(run.count) + ") lies outside the source's " +
             std::to_string(regions) + " regions";
    sum += run.count;  // each count <= regions, run_count bounded: no overflow
    if (sum > region_total)
      return "runs hold more regions than the header's total " + std::to_string(region_total);
    p.runs.push_back(run);
  }
  if (sum != region_total)
    return "runs hold " + std::to_string(sum) + " regions, the header says " +
           std::to_string(region_total);
  // First touches: no region twice. Sorting a copy costs no memory per source region.
  std::vector<ProfileRun> sorted = p.runs;
  std::sort(sorted.begin(), sorted.end(),
            [](const ProfileRun& a, const ProfileRun& b) { return a.first < b.first; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first < sorted[i - 1].end())
      return "region " + std::to_string(sorted[i].first) + " appears twice";
  }
  out = std::move(p);
  return {};
}

std::string profile_mismatch(const AccessProfile& profile, uint64_t source_size,
                             uint32_t region_size) {
  if (profile.source_size != source_size)
    return "recorded for a source of " + std::to_string(profile.source_size) +
           " bytes, this one has " + std::to_string(source_size);
  if (profile.region_size != region_size)
    return "recorded with region size " + std::to_string(profile.region_size) +
           ", this clone uses " + std::to_string(region_size);
  return {};
}

std::string load_profile(const std::string& path, AccessProfile& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "profile " + path + ": cannot open: " + errno_text(errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return "profile " + path + ": not a regular file";
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxFileSize) {
    ::close(fd);
    return "profile " + path + ": too large: " + std::to_string(st.st_size) + " bytes, at most " +
           std::to_string(kMaxFileSize);
  }
  std::vector<std::byte> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return "profile " + path + ": read failed: " + errno_text(e);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);
  if (std::string why = decode_profile(bytes, out); !why.empty())
    return "profile " + path + ": " + why;
  return {};
}

std::string write_profile_file(const std::string& path, const AccessProfile& profile) {
  const std::vector<std::byte> bytes = encode_profile(profile);
  const std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "profile " + path + ": cannot create " + temp + ": " + errno_text(errno);
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(temp.c_str());
      return "profile " + path + ": write failed: " + errno_text(e);
    }
    done += static_cast<size_t>(n);
  }
  // The data must be durable before the rename makes it the profile, or a crash could leave
  // an empty file under the profile's name.
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    ::unlink(temp.c_str());
    return "profile " + path + ": fsync failed: " + errno_text(e);
  }
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(temp.c_str());
    return "profile " + path + ": rename failed: " + errno_text(e);
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return "profile " + path + ": cannot open directory " + dir + ": " + errno_text(errno);
  int synced = ::fsync(dfd);
  int e = errno;
  ::close(dfd);
  if (synced != 0) return "profile " + path + ": fsync of " + dir + " failed: " + errno_text(e);
  return {};
}

std::string profile_file_name(const std::string& identity) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : identity) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  std::string readable;
  for (unsigned char c : identity) {
    if (readable.size() >= 48) break;
    bool keep = std::isalnum(c) || c == '.' || c == '-' || c == '_';
    // A leading dot would hide the file (or name "..").
    char ch = keep && !(readable.empty() && c == '.') ? static_cast<char>(c) : '_';
    // Runs of separators ("nbd://") read better as one.
    if (ch == '_' && !readable.empty() && readable.back() == '_') continue;
    readable.push_back(ch);
  }
  static const char* hex = "0123456789abcdef";
  std::string digits(16, '0');
  for (int i = 15; i >= 0; --i, hash >>= 4) digits[i] = hex[hash & 0xf];
  return (readable.empty() ? std::string() : readable + "-") + digits + ".hprof";
}

}  // namespace hydrate
