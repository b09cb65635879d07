#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace hydrate::cli {

// The COW store of a snapshot: a block device, or a preallocated file attached to a loop device
// (set to detach itself once the module lets go of it).
struct SnapStore {
  std::string device;        // what the module opens
  std::string backing_file;  // set when `device` is a loop device this command attached
  // Keeps an attached loop device alive until the module has opened it: auto-clear detaches
  // it at its last close. Close it (release_loop) once the snapshot exists, or on failure.
  int loop_fd = -1;

  void release_loop();
};

// dev_t of the block device at `path`; throws SnapError naming the path when it is missing or
// not a block device. `role` ("origin", "COW store") goes into the message.
dev_t block_device_number(const std::string& path, const char* role);

// True when data written to a file on device `file_dev` ends up on the block device `origin`:
// the same device, a partition of it, or (for a whole-disk origin) any of its partitions.
bool device_lives_on(dev_t file_dev, dev_t origin);

// Checks that `store_device` is not, and is not backed by a file on, the origin.
void check_store_device(const std::string& store_device, dev_t origin);

// Creates (or reuses) `path`, preallocated to `size` bytes when size > 0, refuses it if it lives
// on `origin`, and attaches it to a free loop device.
SnapStore attach_store_file(const std::string& path, uint64_t size, dev_t origin);

}  // namespace hydrate::cli
