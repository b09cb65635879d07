#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace hydrate {

// A boot profile: the order in which a clone's clients first touched its regions
// (docs/profile-format.md). A later clone of the same source hydrates these regions first.
// Profiles are advisory, untrusted input: decode_profile() validates every field and names what
// was wrong, and a refused profile only costs the prefetch, never the clone.
struct ProfileRun {
  uint64_t first = 0;  // region index
  uint64_t count = 0;  // regions
  uint64_t end() const { return first + count; }
  bool operator==(const ProfileRun&) const = default;
};

struct AccessProfile {
  uint64_t source_size = 0;
  uint32_t region_size = 0;
  std::string source_identity;
  std::vector<ProfileRun> runs;  // first-touch order; each region appears at most once

  uint64_t regions() const;  // sum of run counts
  uint64_t region_count_of_source() const;
};

namespace profile_format {
inline constexpr char kMagic[8] = {'H', 'Y', 'D', 'R', 'P', 'R', 'O', 'F'};
inline constexpr uint32_t kVersion = 1;
inline constexpr size_t kHeaderSize = 48;
inline constexpr size_t kRunSize = 16;  // u64 first, u64 count
// Identities are URLs or paths; anything longer is not one of ours.
inline constexpr uint32_t kMaxIdentity = 4096;
// 2 GiB of 4 KiB regions, each its own run, is 512 Ki runs (8 MiB); a file much larger than
// that is not a profile we wrote.
inline constexpr uint64_t kMaxFileSize = 64ull << 20;
}  // namespace profile_format

std::vector<std::byte> encode_profile(const AccessProfile& profile);
// Empty on success; otherwise why the bytes are not a valid profile (out is then unspecified).
std::string decode_profile(std::span<const std::byte> bytes, AccessProfile& out);

// Empty when the profile fits a clone of this geometry, else the difference (both values).
std::string profile_mismatch(const AccessProfile& profile, uint64_t source_size,
                             uint32_t region_size);

// Reads and decodes `path`; the error names the file and the reason.
std::string load_profile(const std::string& path, AccessProfile& out);
// Writes atomically: a temporary file beside it, fsync, rename over `path`, fsync the
// directory. Empty on success, else the error naming the file.
std::string write_profile_file(const std::string& path, const AccessProfile& profile);

// The file name a clone of `identity` records to and a later clone of it looks for in
// profile.dir: a readable part (sanitized, at most 48 characters) plus the first 16 hex digits
// of the identity's FNV-1a 64 hash, so two identities that sanitize alike still differ.
std::string profile_file_name(const std::string& identity);

}  // namespace hydrate
