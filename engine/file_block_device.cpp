#include "engine/file_block_device.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <vector>

namespace hydrate {

struct FileBlockDevice::Handle {
  int fd = -1;
  // The same file opened O_DIRECT for write_uncached(); -1 where that is refused (or read-only).
  int direct_fd = -1;
  std::string path;
  // Logical block size of a block device: BLKZEROOUT and BLKDISCARD need this alignment.
  uint32_t logical_block = 512;

  // What the kernel turned out to support; each flag only ever goes from true to false.
  std::atomic<bool> nowait_reads{true};
  std::atomic<bool> nowait_writes{true};
  std::atomic<bool> can_punch{true};       // fallocate(PUNCH_HOLE | KEEP_SIZE)
  std::atomic<bool> can_zero_range{true};  // fallocate(ZERO_RANGE)
  std::atomic<bool> can_zeroout{true};     // block device: zeroing offloaded (BLKZEROOUT)
  std::atomic<bool> can_discard{true};     // block device: BLKDISCARD
  std::atomic<bool> can_direct{true};      // direct_fd takes aligned writes (not EINVAL)

  // Steady-clock time (ns) before which small buffered writes go to the pool again: set when
  // an inline write was slow (see FileBlockDevice::write).
  std::atomic<int64_t> inline_writes_paused_until{0};

  std::atomic<uint64_t> inline_reads{0};
  std::atomic<uint64_t> pool_reads{0};
  std::atomic<uint64_t> inline_writes{0};
  std::atomic<uint64_t> pool_writes{0};
  std::atomic<uint64_t> direct_writes{0};

  ~Handle() {
    if (fd >= 0) ::close(fd);
    if (direct_fd >= 0) ::close(direct_fd);
  }
};

namespace {

// Buffered writes up to this size may run on the event loop when RWF_NOWAIT is refused; one
// that takes longer than kSlowInlineWrite sends writes to the pool for kInlineWritePause.
// Writers from several connections queue on the inode lock for a fraction of a millisecond
// (4 connections of 4 KiB writes at QD32: a 0.5 ms threshold sent half the writes to the pool
// and cost 40 % of the IOPS); dirty-page throttling sleeps for many milliseconds.
constexpr size_t kInlineWriteLimit = 128u << 10;
constexpr auto kSlowInlineWrite = std::chrono::microseconds(5000);
constexpr auto kInlineWritePause = std::chrono::milliseconds(200);

std::string errno_text(int err) {
  return std::strerror(err);
}

// "/var/lib/disk0.img: write at offset 4096 (512 bytes): No space left on device"
IoResult op_failure(int err, const std::string& path, const char* operation, uint64_t offset,
                    uint64_t length, const std::string& why) {
  return IoResult::failure(err, path + ": " + operation + " at offset " + std::to_string(offset) +
                                    " (" + std::to_string(length) + " bytes): " + why);
}

IoResult op_errno(int err, const std::string& path, const char* operation, uint64_t offset,
                  uint64_t length) {
  return op_failure(err, path, operation, offset, length, errno_text(err));
}

const std::vector<std::byte>& zero_buffer() {
  static const std::vector<std::byte> zeros(1u << 20);
  return zeros;
}

// Reads all of `out`, retrying EINTR and short reads. May sleep: pool threads only.
IoResult read_fully(const FileBlockDevice::Handle& h, std::span<std::byte> out, uint64_t offset) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n =
        ::pread(h.fd, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return op_errno(errno, h.path, "read", offset + done, out.size() - done);
    }
    if (n == 0)
      return op_failure(EIO, h.path, "read", offset + done, out.size() - done,
                        "unexpected end of file (was the file truncated?)");
    done += static_cast<size_t>(n);
  }
  return IoResult::success();
}

// Writes all of `data` to `fd` with pwritev2 `flags` (RWF_DSYNC for FUA); `operation` names it in
// errors. May sleep: pool threads only (or an inline write that accepts that, see write()).
IoResult write_fd_fully(int fd, const std::string& path, const char* operation,
                        std::span<const std::byte> data, uint64_t offset, int flags) {
  size_t done = 0;
  while (done < data.size()) {
    iovec iov{const_cast<std::byte*>(data.data() + done), data.size() - done};
    ssize_t n = ::pwritev2(fd, &iov, 1, static_cast<off_t>(offset + done), flags);
    if (n < 0) {
      if (errno == EINTR) continue;
      return op_errno(errno, path, operation, offset + done, data.size() - done);
    }
    if (n == 0)
      return op_failure(EIO, path, operation, offset + done, data.size() - done,
                        "the kernel accepted no bytes");
    done += static_cast<size_t>(n);
  }
  return IoResult::success();
}

IoResult write_fully(const FileBlockDevice::Handle& h, std::span<const std::byte> data,
                     uint64_t offset, int flags) {
  return write_fd_fully(h.fd, h.path, "write", data, offset, flags);
}

IoResult write_zero_buffers(const FileBlockDevice::Handle& h, uint64_t offset, uint64_t length) {
  const auto& zeros = zero_buffer();
  while (length > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, zeros.size()));
    IoResult r = write_fully(h, std::span(zeros.data(), chunk), offset, 0);
    if (!r) return r;
    offset += chunk;
    length -= chunk;
  }
  return IoResult::success();
}

// fallocate() with EINTR retried; returns 0 or an errno value.
int fallocate_errno(int fd, int mode, uint64_t offset, uint64_t length) {
  while (::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(length)) != 0) {
    if (errno != EINTR) return errno;
  }
  return 0;
}

bool unsupported(int err) {
  return err == EOPNOTSUPP || err == ENOTTY || err == ENOSYS;
}

IoResult zero_regular_file(FileBlockDevice::Handle& h, uint64_t offset, uint64_t length,
                           bool may_unmap) {
  constexpr int kPunch = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
  if (may_unmap && h.can_punch.load()) {
    int err = fallocate_errno(h.fd, kPunch, offset, length);
    if (err == 0) return IoResult::success();
    if (!unsupported(err)) return op_errno(err, h.path, "punch hole", offset, length);
    h.can_punch = false;
  }
  if (h.can_zero_range.load()) {
    int err = fallocate_errno(h.fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
    if (err == 0) return IoResult::success();
    if (!unsupported(err)) return op_errno(err, h.path, "zero range", offset, length);
    h.can_zero_range = false;
  }
  if (h.can_punch.load()) {
    // No ZERO_RANGE (tmpfs, some network file systems): punching and then reallocating gives
    // allocated zeros just as fast.
    int err = fallocate_errno(h.fd, kPunch, offset, length);
    if (err == 0) {
      err = fallocate_errno(h.fd, FALLOC_FL_KEEP_SIZE, offset, length);
      if (err == 0 || unsupported(err)) return IoResult::success();
      return op_errno(err, h.path, "allocate after punching", offset, length);
    }
    if (!unsupported(err)) return op_errno(err, h.path, "punch hole", offset, length);
    h.can_punch = false;
  }
  return write_zero_buffers(h, offset, length);
}

// Calls `aligned_op` on the part of [offset, offset + length) aligned to the device's logical
// block, and `edge_op` on the unaligned head and tail.
template <typename AlignedOp, typename EdgeOp>
IoResult split_aligned(const FileBlockDevice::Handle& h, uint64_t offset, uint64_t length,
                       AlignedOp aligned_op, EdgeOp edge_op) {
  const uint64_t block = h.logical_block;
  const uint64_t end = offset + length;
  uint64_t first = (offset + block - 1) / block * block;
  uint64_t last = end / block * block;
  if (first >= last) return edge_op(offset, length);
  if (first > offset) {
    IoResult r = edge_op(offset, first - offset);
    if (!r) return r;
  }
  IoResult r = aligned_op(first, last - first);
  if (!r) return r;
  if (end > last) return edge_op(last, end - last);
  return IoResult::success();
}

IoResult zero_block_device(FileBlockDevice::Handle& h, uint64_t offset, uint64_t length,
                           bool may_unmap) {
  auto aligned = [&h, may_unmap](uint64_t off, uint64_t len) -> IoResult {
    if (may_unmap && h.can_punch.load()) {
      // On a block device this is "zero with unmap, no fallback": thin storage frees space.
      int err = fallocate_errno(h.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
      if (err == 0) return IoResult::success();
      if (!unsupported(err) && err != EINVAL) return op_errno(err, h.path, "punch", off, len);
      h.can_punch = false;
    }
    uint64_t range[2] = {off, len};
    while (::ioctl(h.fd, BLKZEROOUT, range) != 0) {
      if (errno == EINTR) continue;
      if (!unsupported(errno)) return op_errno(errno, h.path, "BLKZEROOUT", off, len);
      h.can_zeroout = false;
      return write_zero_buffers(h, off, len);
    }
    return IoResult::success();
  };
  auto edge = [&h](uint64_t off, uint64_t len) { return write_zero_buffers(h, off, len); };
  return split_aligned(h, offset, length, aligned, edge);
}

IoResult discard_block_device(FileBlockDevice::Handle& h, uint64_t offset, uint64_t length) {
  if (!h.can_discard.load()) return IoResult::success();
  auto aligned = [&h](uint64_t off, uint64_t len) -> IoResult {
    uint64_t range[2] = {off, len};
    while (::ioctl(h.fd, BLKDISCARD, range) != 0) {
      if (errno == EINTR) continue;
      // Discard is advisory: a device without it simply keeps the data.
      if (unsupported(errno)) {
        h.can_discard = false;
        return IoResult::success();
      }
      return op_errno(errno, h.path, "BLKDISCARD", off, len);
    }
    return IoResult::success();
  };
  auto edge = [](uint64_t, uint64_t) { return IoResult::success(); };
  return split_aligned(h, offset, length, aligned, edge);
}

void append_extent(ExtentList& out, uint64_t length, uint32_t flags) {
  if (length == 0) return;
  if (!out.empty() && out.back().flags == flags) {
    out.back().length += length;
    return;
  }
  out.push_back(Extent{length, flags});
}

constexpr size_t kMaxAllocationExtents = 4096;

// Holes and data of [offset, end) from SEEK_DATA / SEEK_HOLE. May read on-disk metadata.
IoResult allocation_of_file(const FileBlockDevice::Handle& h, uint64_t offset, uint64_t end,
                            ExtentList& out) {
  constexpr uint32_t kHole = kAllocationHole | kAllocationZero;
  uint64_t pos = offset;
  while (pos < end && out.size() < kMaxAllocationExtents) {
    off_t data = ::lseek(h.fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) {  // nothing but hole up to the end of the file
        append_extent(out, end - pos, kHole);
        return IoResult::success();
      }
      if (errno == EINVAL || unsupported(errno)) {  // no hole support: everything is data
        append_extent(out, end - pos, 0);
        return IoResult::success();
      }
      return op_errno(errno, h.path, "SEEK_DATA", pos, end - pos);
    }
    uint64_t data_start = static_cast<uint64_t>(data);
    if (data_start > pos) {
      uint64_t stop = std::min(data_start, end);
      append_extent(out, stop - pos, kHole);
      pos = stop;
      continue;
    }
    off_t hole = ::lseek(h.fd, static_cast<off_t>(pos), SEEK_HOLE);
    if (hole < 0) {
      if (errno == ENXIO) {  // the file shrank under us; what is left reads as nothing
        append_extent(out, end - pos, kHole);
        return IoResult::success();
      }
      return op_errno(errno, h.path, "SEEK_HOLE", pos, end - pos);
    }
    uint64_t stop = std::min(std::max(static_cast<uint64_t>(hole), pos + 1), end);
    append_extent(out, stop - pos, 0);
    pos = stop;
  }
  return IoResult::success();
}

// Reads what the page cache already holds, without sleeping: returns how many bytes of `out`
// were filled (all of them on a cache hit). Anything else is left to the blocking path, which
// also reports errors with full context.
size_t read_nowait(FileBlockDevice::Handle& h, std::span<std::byte> out, uint64_t offset) {
  size_t done = 0;
  while (done < out.size()) {
    iovec iov{out.data() + done, out.size() - done};
    ssize_t n = ::preadv2(h.fd, &iov, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) h.nowait_reads = false;
    break;  // EAGAIN (not cached), end of file, or an error
  }
  return done;
}

// The write counterpart: most file systems refuse buffered NOWAIT writes outright, and then
// we stop asking.
size_t write_nowait(FileBlockDevice::Handle& h, std::span<const std::byte> data, uint64_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    iovec iov{const_cast<std::byte*>(data.data() + done), data.size() - done};
    ssize_t n = ::pwritev2(h.fd, &iov, 1, static_cast<off_t>(offset + done), RWF_NOWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EOPNOTSUPP || errno == EINVAL)) h.nowait_writes = false;
    break;
  }
  return done;
}

// /sys/dev/block/MAJ:MIN/queue/<attribute>, looking in the parent disk for a partition.
uint64_t block_queue_attribute(dev_t device, const char* attribute) {
  std::string base =
      "/sys/dev/block/" + std::to_string(major(device)) + ":" + std::to_string(minor(device));
  for (const char* dir : {"/queue/", "/../queue/"}) {
    std::ifstream in(base + dir + attribute);
    uint64_t value = 0;
    if (in >> value) return value;
  }
  return 0;
}

}  // namespace

IoResult FileBlockDevice::open(const std::string& path, const FileOpenOptions& options,
                               std::unique_ptr<FileBlockDevice>& out) {
  if (options.read_only && options.ensure_size)
    return IoResult::failure(EINVAL, path + ": cannot create or extend a file opened read-only");
  int flags = O_CLOEXEC | (options.read_only ? O_RDONLY : O_RDWR);
  if (options.ensure_size) flags |= O_CREAT;
  int fd;
  do {
    fd = ::open(path.c_str(), flags, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    int err = errno;
    return IoResult::failure(err, path + ": open " +
                                      (options.read_only ? "read-only" : "read-write") +
                                      " failed: " + errno_text(err));
  }
  auto handle = std::make_shared<Handle>();
  handle->fd = fd;
  handle->path = path;

  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return IoResult::failure(errno, path + ": fstat failed: " + errno_text(errno));
  uint64_t size = 0;
  bool block_device = false;
  if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
    if (options.ensure_size && *options.ensure_size > size) {
      if (::ftruncate(fd, static_cast<off_t>(*options.ensure_size)) != 0)
        return IoResult::failure(errno, path + ": extending from " + std::to_string(size) + " to " +
                                            std::to_string(*options.ensure_size) +
                                            " bytes failed: " + errno_text(errno));
      size = *options.ensure_size;
    }
  } else if (S_ISBLK(st.st_mode)) {
    block_device = true;
    if (::ioctl(fd, BLKGETSIZE64, &size) != 0)
      return IoResult::failure(errno, path + ": BLKGETSIZE64 failed: " + errno_text(errno));
    int logical = 0;
    if (::ioctl(fd, BLKSSZGET, &logical) == 0 && logical > 0)
      handle->logical_block = static_cast<uint32_t>(logical);
    if (options.ensure_size && *options.ensure_size > size)
      return IoResult::failure(ENOSPC, path + ": block device has " + std::to_string(size) +
                                           " bytes, " + std::to_string(*options.ensure_size) +
                                           " are needed");
    handle->can_zeroout = block_queue_attribute(st.st_rdev, "write_zeroes_max_bytes") > 0;
    handle->can_discard = block_queue_attribute(st.st_rdev, "discard_max_bytes") > 0;
  } else {
    return IoResult::failure(EINVAL, path + ": not a regular file or a block device");
  }

  if (!block_device && !options.read_only) {
    // Learn whether the file system can punch holes without touching data: a punch past the end
    // of the file changes nothing, but an unsupporting file system refuses it all the same.
    uint64_t probe_at = (size + 4095) / 4096 * 4096;
    int err = fallocate_errno(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, probe_at, 4096);
    if (err != 0) handle->can_punch = false;
  }

  if (!options.read_only) {
    // Not every file system takes O_DIRECT (tmpfs before 6.6, some FUSE ones): then
    // write_uncached() simply writes through the page cache.
    do {
      handle->direct_fd = ::open(path.c_str(), O_CLOEXEC | O_WRONLY | O_DIRECT);
    } while (handle->direct_fd < 0 && errno == EINTR);
  }

  BlockingPool& pool = options.pool ? *options.pool : BlockingPool::shared();
  out.reset(new FileBlockDevice(std::move(handle), size, options.read_only, block_device, pool,
                                options.try_nowait));
  return IoResult::success();
}

FileBlockDevice::FileBlockDevice(std::shared_ptr<Handle> handle, uint64_t size, bool read_only,
                                 bool block_device, BlockingPool& pool, bool try_nowait)
    : handle_(std::move(handle)),
      size_(size),
      read_only_(read_only),
      block_device_(block_device),
      pool_(pool),
      try_nowait_(try_nowait) {}

FileBlockDevice::~FileBlockDevice() = default;

const std::string& FileBlockDevice::name() const {
  return handle_->path;
}

bool FileBlockDevice::fast_zero() const {
  if (read_only_) return false;
  if (block_device_) return handle_->can_zeroout.load();
  return handle_->can_punch.load() || handle_->can_zero_range.load();
}

bool FileBlockDevice::discard_zeroes() const {
  return !block_device_ && !read_only_ && handle_->can_punch.load();
}

FileDeviceCounters FileBlockDevice::counters() const {
  return FileDeviceCounters{handle_->inline_reads.load(), handle_->pool_reads.load(),
                            handle_->inline_writes.load(), handle_->pool_writes.load(),
                            handle_->direct_writes.load()};
}

IoResult FileBlockDevice::check_range(const char* operation, uint64_t offset,
                                      uint64_t length) const {
  if (offset > size_ || length > size_ - offset)
    return op_failure(EINVAL, handle_->path, operation, offset, length,
                      "beyond the end of the device (" + std::to_string(size_) + " bytes)");
  return IoResult::success();
}

asio::awaitable<IoResult> FileBlockDevice::read(uint64_t offset, std::span<std::byte> out) {
  if (IoResult r = check_range("read", offset, out.size()); !r) co_return r;
  size_t done = 0;
  if (try_nowait_ && handle_->nowait_reads.load(std::memory_order_relaxed)) {
    done = read_nowait(*handle_, out, offset);
    if (done == out.size()) {
      handle_->inline_reads.fetch_add(1, std::memory_order_relaxed);
      co_return IoResult::success();
    }
  }
  handle_->pool_reads.fetch_add(1, std::memory_order_relaxed);
  auto job = [handle = handle_, rest = out.subspan(done), at = offset + done] {
    return read_fully(*handle, rest, at);
  };
  IoResult result = co_await pool_.run(std::move(job));
  co_return result;
}

asio::awaitable<IoResult> FileBlockDevice::write(uint64_t offset, std::span<const std::byte> data,
                                                 bool fua) {
  if (read_only_)
    co_return op_failure(EPERM, handle_->path, "write", offset, data.size(), "opened read-only");
  if (IoResult r = check_range("write", offset, data.size()); !r) co_return r;
  size_t done = 0;
  // A FUA write waits for the disk by definition, so it never tries the inline path.
  if (!fua && try_nowait_ && handle_->nowait_writes.load(std::memory_order_relaxed)) {
    done = write_nowait(*handle_, data, offset);
    if (done == data.size()) {
      handle_->inline_writes.fetch_add(1, std::memory_order_relaxed);
      co_return IoResult::success();
    }
  }
  if (!fua && try_nowait_ && done == 0 && !block_device_ && data.size() <= kInlineWriteLimit &&
      !handle_->nowait_writes.load(std::memory_order_relaxed)) {
    // The file system refuses RWF_NOWAIT for buffered writes (ext4 does), yet a small buffered
    // write only copies into the page cache: a few microseconds, far less than the two thread
    // hand-offs of the pool on a busy core. It can sleep when the kernel throttles dirty
    // pages, so a slow one sends writes back to the pool for a while.
    const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
    if (now >= handle_->inline_writes_paused_until.load(std::memory_order_relaxed)) {
      IoResult r = write_fully(*handle_, data, offset, 0);
      const int64_t took = std::chrono::steady_clock::now().time_since_epoch().count() - now;
      if (took > std::chrono::nanoseconds(kSlowInlineWrite).count())
        handle_->inline_writes_paused_until.store(
            now + took + std::chrono::nanoseconds(kInlineWritePause).count(),
            std::memory_order_relaxed);
      handle_->inline_writes.fetch_add(1, std::memory_order_relaxed);
      co_return r;
    }
  }
  handle_->pool_writes.fetch_add(1, std::memory_order_relaxed);
  auto job = [handle = handle_, rest = data.subspan(done), at = offset + done, fua] {
    return write_fully(*handle, rest, at, fua ? RWF_DSYNC : 0);
  };
  IoResult result = co_await pool_.run(std::move(job));
  co_return result;
}

asio::awaitable<IoResult> FileBlockDevice::write_uncached(uint64_t offset,
                                                          std::span<const std::byte> data) {
  if (read_only_)
    co_return op_failure(EPERM, handle_->path, "write", offset, data.size(), "opened read-only");
  if (IoResult r = check_range("write", offset, data.size()); !r) co_return r;
  const size_t direct = data.size() / kDirectAlignment * kDirectAlignment;
  if (handle_->direct_fd < 0 || !handle_->can_direct.load(std::memory_order_relaxed) ||
      direct == 0 || offset % kDirectAlignment != 0 ||
      reinterpret_cast<uintptr_t>(data.data()) % kDirectAlignment != 0 ||
      handle_->logical_block > kDirectAlignment)
    co_return co_await write(offset, data, false);
  handle_->direct_writes.fetch_add(1, std::memory_order_relaxed);
  auto job = [handle = handle_, aligned = data.first(direct), offset] {
    return write_fd_fully(handle->direct_fd, handle->path, "direct write", aligned, offset, 0);
  };
  IoResult r = co_await pool_.run(std::move(job));
  if (r.error == EINVAL) {
    // Some file systems open O_DIRECT and then refuse the writes (alignment rules of their
    // own): a property of the file system, not a failed device. Stop trying.
    handle_->can_direct = false;
    co_return co_await write(offset, data, false);
  }
  if (!r || direct == data.size()) co_return r;
  co_return co_await write(offset + direct, data.subspan(direct), false);
}

asio::awaitable<IoResult> FileBlockDevice::flush() {
  if (read_only_) co_return IoResult::success();  // nothing of ours can be dirty
  auto job = [handle = handle_] {
    while (::fdatasync(handle->fd) != 0) {
      if (errno == EINTR) continue;
      return IoResult::failure(errno,
                               handle->path + ": flush (fdatasync) failed: " + errno_text(errno));
    }
    return IoResult::success();
  };
  co_return co_await pool_.run(std::move(job));
}

asio::awaitable<IoResult> FileBlockDevice::write_zeroes(uint64_t offset, uint64_t length,
                                                        bool may_unmap) {
  if (read_only_)
    co_return op_failure(EPERM, handle_->path, "write zeroes", offset, length, "opened read-only");
  if (IoResult r = check_range("write zeroes", offset, length); !r) co_return r;
  if (length == 0) co_return IoResult::success();
  auto job = [handle = handle_, offset, length, may_unmap, block = block_device_] {
    return block ? zero_block_device(*handle, offset, length, may_unmap)
                 : zero_regular_file(*handle, offset, length, may_unmap);
  };
  co_return co_await pool_.run(std::move(job));
}

asio::awaitable<IoResult> FileBlockDevice::discard(uint64_t offset, uint64_t length) {
  if (read_only_)
    co_return op_failure(EPERM, handle_->path, "discard", offset, length, "opened read-only");
  if (IoResult r = check_range("discard", offset, length); !r) co_return r;
  if (length == 0) co_return IoResult::success();
  if (!block_device_ && !handle_->can_punch.load()) co_return IoResult::success();
  auto job = [handle = handle_, offset, length, block = block_device_] {
    if (block) return discard_block_device(*handle, offset, length);
    int err =
        fallocate_errno(handle->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
    if (err == 0) return IoResult::success();
    if (unsupported(err)) {
      handle->can_punch = false;
      return IoResult::success();
    }
    return op_errno(err, handle->path, "discard (punch hole)", offset, length);
  };
  co_return co_await pool_.run(std::move(job));
}

asio::awaitable<IoResult> FileBlockDevice::allocation(uint64_t offset, uint64_t length,
                                                      ExtentList& out) {
  if (IoResult r = check_range("allocation", offset, length); !r) co_return r;
  if (length == 0) co_return IoResult::success();
  if (block_device_) {
    append_extent(out, length, 0);
    co_return IoResult::success();
  }
  // Built on the pool thread and appended here, so `out` is only touched on the caller's thread.
  struct Found {
    IoResult result;
    ExtentList extents;
  };
  auto job = [handle = handle_, offset, end = offset + length] {
    Found f;
    f.result = allocation_of_file(*handle, offset, end, f.extents);
    return f;
  };
  Found found = co_await pool_.run(std::move(job));
  if (!found.result) co_return found.result;
  for (const Extent& e : found.extents) append_extent(out, e.length, e.flags);
  co_return IoResult::success();
}

asio::awaitable<void> FileBlockDevice::prefetch(uint64_t offset, uint64_t length) {
  if (offset >= size_ || length == 0) co_return;
  length = std::min(length, size_ - offset);
  auto job = [handle = handle_, offset, length] {
    ::posix_fadvise(handle->fd, static_cast<off_t>(offset), static_cast<off_t>(length),
                    POSIX_FADV_WILLNEED);
  };
  co_await pool_.run(std::move(job));
}

}  // namespace hydrate
