#include "cli/snap_store.h"

#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "cli/snap_control.h"

namespace hydrate::cli {

namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string sysfs_dev_dir(dev_t dev) {
  return "/sys/dev/block/" + std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
}

// The whole disk a partition belongs to, or `dev` itself when it is not a partition.
dev_t whole_disk_of(dev_t dev) {
  std::string dir = sysfs_dev_dir(dev);
  if (::access((dir + "/partition").c_str(), F_OK) != 0) return dev;
  std::ifstream parent(dir + "/../dev");
  unsigned maj = 0, min = 0;
  char colon = 0;
  if (parent >> maj >> colon >> min && colon == ':') return makedev(maj, min);
  return dev;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

}  // namespace

void SnapStore::release_loop() {
  if (loop_fd >= 0) ::close(loop_fd);
  loop_fd = -1;
}

dev_t block_device_number(const std::string& path, const char* role) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw SnapError(std::string(role) + " " + path + ": " + errno_text(errno));
  if (!S_ISBLK(st.st_mode))
    throw SnapError(std::string(role) + " " + path + " is not a block device");
  return st.st_rdev;
}

bool device_lives_on(dev_t file_dev, dev_t origin) {
  if (file_dev == origin) return true;
  // A file on a partition of a whole-disk origin is on the origin too.
  return whole_disk_of(file_dev) == origin;
}

void check_store_device(const std::string& store_device, dev_t origin) {
  dev_t store = block_device_number(store_device, "COW store");
  if (device_lives_on(store, origin) || device_lives_on(origin, store))
    throw SnapError("COW store " + store_device + " is the origin device or overlaps it");
  // A loop device backed by a file on the origin would write into the snapshotted device.
  std::ifstream backing(sysfs_dev_dir(store) + "/loop/backing_file");
  std::string file;
  if (backing && std::getline(backing, file) && !file.empty()) {
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0 && device_lives_on(st.st_dev, origin))
      throw SnapError("COW store " + store_device + " is backed by " + file +
                      ", which lives on the device being snapshotted (a COW store on the "
                      "snapshotted device is not supported yet)");
  }
}

SnapStore attach_store_file(const std::string& path, uint64_t size, dev_t origin) {
  Fd file(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (file.get() < 0) throw SnapError("COW store file " + path + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(file.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw SnapError("COW store file " + path + " is not a regular file");
  if (device_lives_on(st.st_dev, origin))
    throw SnapError("COW store file " + path +
                    " lives on the device being snapshotted; put it on another device (a COW "
                    "store on the snapshotted device is not supported yet)");
  if (size > 0) {
    int err = ::posix_fallocate(file.get(), 0, static_cast<off_t>(size));
    if (err != 0)
      throw SnapError("cannot preallocate " + std::to_string(size) + " bytes for " + path + ": " +
                      errno_text(err));
    st.st_size = static_cast<off_t>(std::max<uint64_t>(size, st.st_size));
  }
  if (st.st_size < 4096)
    throw SnapError("COW store file " + path +
                    " is empty or smaller than one chunk; give "
                    "--store-size to preallocate it");

  Fd control(::open("/dev/loop-control", O_RDWR | O_CLOEXEC));
  if (control.get() < 0)
    throw SnapError("cannot open /dev/loop-control to attach " + path + ": " + errno_text(errno) +
                    " (is the loop module loaded?)");
  for (int attempt = 0; attempt < 8; ++attempt) {
    int n = ::ioctl(control.get(), LOOP_CTL_GET_FREE);
    if (n < 0) throw SnapError("no free loop device for " + path + ": " + errno_text(errno));
    std::string loop = "/dev/loop" + std::to_string(n);
    Fd dev(::open(loop.c_str(), O_RDWR | O_CLOEXEC));
    if (dev.get() < 0) throw SnapError("cannot open " + loop + ": " + errno_text(errno));
    loop_config config{};
    config.fd = static_cast<uint32_t>(file.get());
    config.block_size = 4096;
    config.info.lo_flags = LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO;
    std::strncpy(reinterpret_cast<char*>(config.info.lo_file_name), path.c_str(), LO_NAME_SIZE - 1);
    if (::ioctl(dev.get(), LOOP_CONFIGURE, &config) == 0) return {loop, path, dev.release()};
    if (errno != EBUSY)  // EBUSY: someone else took this loop device first
      throw SnapError("cannot attach " + path + " to " + loop + ": " + errno_text(errno));
  }
  throw SnapError("cannot attach " + path + " to a loop device: all candidates were taken");
}

}  // namespace hydrate::cli
