#include "cli/snap_control.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hydrate::cli {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace

SnapControl::SnapControl(const std::string& device_path) {
  fd_ = ::open(device_path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd_ < 0) {
    int err = errno;
    if (err == ENOENT)
      throw SnapError(device_path +
                      " does not exist: the hydrate_snap kernel module is not loaded "
                      "(modprobe hydrate_snap, or insmod hydrate_snap.ko)");
    if (err == EACCES || err == EPERM)
      throw SnapError("cannot open " + device_path + ": " + errno_text(err) +
                      " (hydrate snap needs root)");
    throw SnapError("cannot open " + device_path + ": " + errno_text(err));
  }
  if (::ioctl(fd_, HSNAP_IOC_VERSION, &version_) != 0) {
    int err = errno;
    ::close(fd_);
    throw SnapError("HSNAP_IOC_VERSION on " + device_path + " failed: " + errno_text(err));
  }
  if (version_.api_version != HYDRATE_SNAP_API_VERSION) {
    ::close(fd_);
    throw SnapError("the loaded hydrate_snap module speaks API " +
                    std::to_string(version_.api_version) + " but this hydrate speaks API " +
                    std::to_string(HYDRATE_SNAP_API_VERSION) + ": load the matching module");
  }
}

SnapControl::~SnapControl() {
  if (fd_ >= 0) ::close(fd_);
}

uint32_t SnapControl::create(const std::string& origin, const std::string& store,
                             uint32_t chunk_shift, uint32_t flags) {
  hsnap_create req{};
  if (origin.size() >= sizeof(req.origin) || store.size() >= sizeof(req.store))
    throw SnapError("path too long (the limit is " + std::to_string(HSNAP_PATH_MAX - 1) +
                    " bytes)");
  std::memcpy(req.origin, origin.data(), origin.size());
  std::memcpy(req.store, store.data(), store.size());
  req.chunk_shift = chunk_shift;
  req.flags = flags;
  if (::ioctl(fd_, HSNAP_IOC_CREATE, &req) == 0) return req.id;

  int err = errno;
  std::string what = store.empty() ? "cannot track " + origin
                                   : "cannot snapshot " + origin + " (COW store " + store + ")";
  switch (err) {
    case EBUSY:
      throw SnapError(what +
                      ": device busy — it already has a snapshot, overlaps a tracked "
                      "device, is a COW store in use, or the store is open elsewhere");
    case EEXIST:
      throw SnapError(what + ": it is already tracked (give --store to take a snapshot)");
    case ENOENT:
      throw SnapError(what + ": no such device");
    case ENOTBLK:
      throw SnapError(what + ": not a block device");
    case EINVAL:
      throw SnapError(what +
                      ": invalid request (chunk size, a snapshot device as origin, "
                      "or a COW store on the origin itself)");
    case ENOSPC:
      throw SnapError(what + ": the COW store is smaller than one chunk");
    case EMFILE:
      throw SnapError(what + ": too many tracked devices (limit " +
                      std::to_string(HSNAP_MAX_TRACKERS) + ")");
    default:
      throw SnapError(what + ": " + errno_text(err) +
                      (err == EBUSY ? "" : " (see dmesg for the module's reason)"));
  }
}

void SnapControl::destroy(uint32_t id, uint32_t flags) {
  hsnap_destroy req{id, flags};
  if (::ioctl(fd_, HSNAP_IOC_DESTROY, &req) == 0) return;
  int err = errno;
  std::string what = "cannot destroy snapshot " + std::to_string(id);
  if (err == EBUSY)
    throw SnapError(what + ": /dev/" HYDRATE_SNAP_DISK_PREFIX + std::to_string(id) +
                    " is in use (mounted or open); unmount it or pass --force");
  if (err == ENOENT)
    throw SnapError(what + ((flags & HSNAP_DESTROY_KEEP_TRACKING)
                                ? ": no such snapshot (the device has no snapshot)"
                                : ": no such tracked device"));
  throw SnapError(what + ": " + errno_text(err));
}

std::vector<uint32_t> SnapControl::list() {
  hsnap_list req{};
  if (::ioctl(fd_, HSNAP_IOC_LIST, &req) != 0)
    throw SnapError(std::string("cannot list snapshots: ") + errno_text(errno));
  return std::vector<uint32_t>(req.ids, req.ids + req.count);
}

hsnap_info SnapControl::info(uint32_t id) {
  hsnap_info req{};
  req.id = id;
  if (::ioctl(fd_, HSNAP_IOC_INFO, &req) != 0) {
    int err = errno;
    if (err == ENOENT) throw SnapError("no tracked device with id " + std::to_string(id));
    throw SnapError("cannot read the state of " + std::to_string(id) + ": " + errno_text(err));
  }
  return req;
}

std::vector<uint8_t> SnapControl::cbt(uint32_t id, uint32_t source, uint64_t first, uint64_t count,
                                      uint64_t* generation) {
  std::vector<uint8_t> bits((count + 7) / 8);
  hsnap_cbt_read req{};
  req.id = id;
  req.source = source;
  req.first_chunk = first;
  req.nr_chunks = count;
  req.buffer = reinterpret_cast<uintptr_t>(bits.data());
  if (::ioctl(fd_, HSNAP_IOC_CBT_READ, &req) != 0) {
    int err = errno;
    if (err == ENOENT)
      throw SnapError(source == HSNAP_CBT_SNAPSHOT
                          ? "device " + std::to_string(id) + " has no snapshot, so no frozen CBT"
                          : "no tracked device with id " + std::to_string(id));
    throw SnapError("cannot read the CBT of " + std::to_string(id) + ": " + errno_text(err));
  }
  bits.resize((req.nr_chunks + 7) / 8);
  if (generation) *generation = req.generation;
  return bits;
}

void SnapControl::cbt_reset(uint32_t id) {
  hsnap_cbt_reset req{id, 0};
  if (::ioctl(fd_, HSNAP_IOC_CBT_RESET, &req) != 0) {
    int err = errno;
    if (err == ENOENT) throw SnapError("no tracked device with id " + std::to_string(id));
    throw SnapError("cannot reset the CBT of " + std::to_string(id) + ": " + errno_text(err));
  }
}

}  // namespace hydrate::cli
