#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "engine/clone/clone_volume.h"
#include "engine/export.h"

namespace hydrate {

// The exports an operator can inspect and steer through the control socket: every export for
// `status`, clones for `pause`, `resume` and `set`.
class ControlRegistry {
 public:
  void add_export(std::shared_ptr<Export> export_);
  void add_clone(std::shared_ptr<CloneVolume> clone);

  std::vector<std::shared_ptr<Export>> exports() const;
  // Null when no clone has that name.
  std::shared_ptr<CloneVolume> clone(const std::string& name) const;
  std::shared_ptr<Export> find(const std::string& name) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Export>> exports_;
  std::vector<std::shared_ptr<CloneVolume>> clones_;
};

}  // namespace hydrate
