#include "engine/control/control_registry.h"

namespace hydrate {

void ControlRegistry::add_export(std::shared_ptr<Export> export_) {
  std::lock_guard lock(mutex_);
  exports_.push_back(std::move(export_));
}

void ControlRegistry::add_clone(std::shared_ptr<CloneVolume> clone) {
  std::lock_guard lock(mutex_);
  exports_.push_back(clone);
  clones_.push_back(std::move(clone));
}

std::vector<std::shared_ptr<Export>> ControlRegistry::exports() const {
  std::lock_guard lock(mutex_);
  return exports_;
}

std::shared_ptr<CloneVolume> ControlRegistry::clone(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (auto& c : clones_)
    if (c->info().name == name) return c;
  return nullptr;
}

std::shared_ptr<Export> ControlRegistry::find(const std::string& name) const {
  std::lock_guard lock(mutex_);
  for (auto& e : exports_)
    if (e->info().name == name) return e;
  return nullptr;
}

}  // namespace hydrate
