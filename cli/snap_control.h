#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "kmod/include/uapi/linux/hydrate_snap.h"

namespace hydrate::cli {

// A failure of a `hydrate snap` operation, worded for the user: what was asked, what went wrong,
// and what to do about it when there is something to do.
class SnapError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The hydrate-snap control device (/dev/hydrate-snap-ctl): one open file descriptor and the
// ioctls of kmod/include/uapi/linux/hydrate_snap.h, with errno turned into SnapError messages.
class SnapControl {
 public:
  static constexpr const char* kDevicePath = "/dev/" HYDRATE_SNAP_CTL_NAME;

  // Opens the control device and checks the module speaks HYDRATE_SNAP_API_VERSION.
  explicit SnapControl(const std::string& device_path = kDevicePath);
  ~SnapControl();
  SnapControl(const SnapControl&) = delete;
  SnapControl& operator=(const SnapControl&) = delete;

  hsnap_version version() const { return version_; }
  uint32_t create(const std::string& origin, const std::string& store, uint32_t chunk_shift,
                  uint32_t flags);
  void destroy(uint32_t id, uint32_t flags);
  std::vector<uint32_t> list();
  hsnap_info info(uint32_t id);
  // Bits of chunks [first, first + count), LSB first; `generation` receives the CBT generation.
  std::vector<uint8_t> cbt(uint32_t id, uint32_t source, uint64_t first, uint64_t count,
                           uint64_t* generation);
  void cbt_reset(uint32_t id);

 private:
  int fd_ = -1;
  hsnap_version version_{};
};

}  // namespace hydrate::cli
