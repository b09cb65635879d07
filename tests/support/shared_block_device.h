#pragma once

#include "engine/forwarding_block_device.h"

namespace hydrate::test {

// Forwards every call to a device the test keeps owning, so an engine object can "own" it
// (and be destroyed, reopened, crashed) while the test still inspects the device.
class SharedBlockDevice final : public ForwardingBlockDevice {
 public:
  using ForwardingBlockDevice::ForwardingBlockDevice;
};

}  // namespace hydrate::test
