#pragma once

#include "engine/forwarding_source.h"

namespace hydrate::test {

// Forwards to a Source the test keeps owning (see SharedBlockDevice).
class SharedSource final : public ForwardingSource {
 public:
  using ForwardingSource::ForwardingSource;
};

}  // namespace hydrate::test
