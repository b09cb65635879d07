#include "engine/snapshot_cbt.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string_view>

#include "engine/log.h"
#include "kmod/include/uapi/linux/hydrate_snap.h"

namespace hydrate {

namespace {

// An Export that answers everything through `inner` and adds one metadata context.
class SnapshotCbtExport final : public Export {
 public:
  SnapshotCbtExport(std::shared_ptr<Export> inner, SnapshotCbt cbt)
      : inner_(std::move(inner)), cbt_(std::move(cbt)) {
    contexts_ = inner_->meta_contexts();
    // emplace with an explicit length: GCC 12's -Warray-bounds misfires on push_back of a
    // C string into a vector<string> at -O2 (a known false positive).
    contexts_.emplace_back(kSnapshotCbtContext,
                           std::char_traits<char>::length(kSnapshotCbtContext));
  }

  const ExportInfo& info() const override { return inner_->info(); }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out,
                                 std::vector<ByteRange>* zeros) override {
    return inner_->read(offset, out, zeros);
  }
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  WriteFlags flags) override {
    return inner_->write(offset, data, flags);
  }
  asio::awaitable<IoResult> flush() override { return inner_->flush(); }
  asio::awaitable<IoResult> trim(uint64_t offset, uint64_t length, WriteFlags flags) override {
    return inner_->trim(offset, length, flags);
  }
  asio::awaitable<IoResult> zero(uint64_t offset, uint64_t length, ZeroFlags flags) override {
    return inner_->zero(offset, length, flags);
  }
  asio::awaitable<IoResult> cache(uint64_t offset, uint64_t length) override {
    return inner_->cache(offset, length);
  }
  std::vector<std::string> meta_contexts() const override { return contexts_; }

  asio::awaitable<IoResult> block_status(size_t context, uint64_t offset, uint64_t length,
                                         size_t max_extents, ExtentList& out) override {
    if (context + 1 != contexts_.size())
      co_return co_await inner_->block_status(context, offset, length, max_extents, out);
    if (offset >= cbt_.device_size)
      co_return IoResult::failure(EINVAL, "export " + inner_->info().name + ": " +
                                              kSnapshotCbtContext + " at offset " +
                                              std::to_string(offset) + " is past the end");
    cbt_.extents(offset, length, max_extents, out);
    co_return IoResult::success();
  }

 private:
  std::shared_ptr<Export> inner_;
  SnapshotCbt cbt_;
  std::vector<std::string> contexts_;
};

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

void SnapshotCbt::extents(uint64_t offset, uint64_t length, size_t max_extents,
                          ExtentList& out) const {
  uint64_t end = std::min(device_size, offset + length);
  size_t added = 0;
  while (offset < end && added < std::max<size_t>(max_extents, 1)) {
    uint64_t chunk = offset / chunk_size;
    bool is_dirty = dirty(chunk);
    uint64_t next = chunk + 1;
    while (next * chunk_size < end && dirty(next) == is_dirty) ++next;
    uint64_t run_end = std::min(end, next * chunk_size);
    out.push_back(Extent{run_end - offset, is_dirty ? kDirtyBitmapDirty : 0u});
    ++added;
    offset = run_end;
  }
}

std::optional<uint32_t> snapshot_device_id(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return std::nullopt;
  // The kernel's own name for the device, whatever the path is called.
  std::ifstream uevent("/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" +
                       std::to_string(minor(st.st_rdev)) + "/uevent");
  std::string line;
  constexpr std::string_view kKey = "DEVNAME=" HYDRATE_SNAP_DISK_PREFIX;
  while (std::getline(uevent, line)) {
    if (line.compare(0, kKey.size(), kKey) != 0) continue;
    std::string digits = line.substr(kKey.size());
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    return static_cast<uint32_t>(std::stoul(digits));
  }
  return std::nullopt;
}

SnapshotCbt read_snapshot_cbt(uint32_t id) {
  const std::string ctl = "/dev/" HYDRATE_SNAP_CTL_NAME;
  const std::string what = "CBT of /dev/" HYDRATE_SNAP_DISK_PREFIX + std::to_string(id);
  int fd = ::open(ctl.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0)
    throw std::runtime_error("cannot read the " + what + ": " + ctl + ": " + errno_text(errno) +
                             (errno == ENOENT ? " (is the hydrate_snap module loaded?)" : ""));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};

  hsnap_version version{};
  if (::ioctl(fd, HSNAP_IOC_VERSION, &version) != 0)
    throw std::runtime_error("cannot read the " + what + ": version: " + errno_text(errno));
  if (version.api_version != HYDRATE_SNAP_API_VERSION)
    throw std::runtime_error("cannot read the " + what + ": the module speaks API " +
                             std::to_string(version.api_version) + ", hydrate speaks " +
                             std::to_string(HYDRATE_SNAP_API_VERSION));
  hsnap_info info{};
  info.id = id;
  if (::ioctl(fd, HSNAP_IOC_INFO, &info) != 0)
    throw std::runtime_error("cannot read the " + what + ": " + errno_text(errno));
  if (!(info.state & HSNAP_STATE_SNAPSHOT))
    throw std::runtime_error("cannot read the " + what + ": the device has no snapshot");

  SnapshotCbt cbt;
  cbt.id = id;
  cbt.chunk_size = uint64_t{1} << info.chunk_shift;
  cbt.device_size = info.origin_sectors * 512;
  cbt.bits.assign((info.nr_chunks + 7) / 8, 0);
  hsnap_cbt_read req{};
  req.id = id;
  req.source = HSNAP_CBT_SNAPSHOT;
  req.first_chunk = 0;
  req.nr_chunks = info.nr_chunks;
  req.buffer = reinterpret_cast<uintptr_t>(cbt.bits.data());
  if (::ioctl(fd, HSNAP_IOC_CBT_READ, &req) != 0)
    throw std::runtime_error("cannot read the " + what + ": " + errno_text(errno));
  if (req.nr_chunks != info.nr_chunks)
    throw std::runtime_error("cannot read the " + what + ": the module returned " +
                             std::to_string(req.nr_chunks) + " of " +
                             std::to_string(info.nr_chunks) + " chunks");
  cbt.generation = req.generation;
  return cbt;
}

std::shared_ptr<Export> with_snapshot_cbt(std::shared_ptr<Export> plain, const std::string& path) {
  std::optional<uint32_t> id = snapshot_device_id(path);
  if (!id) return plain;
  SnapshotCbt cbt = read_snapshot_cbt(*id);
  uint64_t dirty = 0;
  for (uint8_t byte : cbt.bits) dirty += static_cast<uint64_t>(__builtin_popcount(byte));
  log::info("snapshot_cbt", {{"export", plain->info().name},
                             {"device", path},
                             {"context", kSnapshotCbtContext},
                             {"chunk_size", cbt.chunk_size},
                             {"dirty_chunks", dirty},
                             {"generation", cbt.generation}});
  return std::make_shared<SnapshotCbtExport>(std::move(plain), std::move(cbt));
}

}  // namespace hydrate
