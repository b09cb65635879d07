#include "nbd-server/export_table.h"

namespace hydrate::nbd {

void ExportTable::add(std::shared_ptr<Export> export_, bool is_default) {
  std::lock_guard lock(mutex_);
  if (is_default) default_ = export_;
  exports_.push_back(std::move(export_));
}

std::shared_ptr<Export> ExportTable::find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  for (const auto& e : exports_)
    if (e->info().name == name) return e;
  if (!name.empty()) return nullptr;
  if (default_) return default_;
  if (exports_.size() == 1) return exports_.front();
  return nullptr;
}

std::vector<std::shared_ptr<Export>> ExportTable::all() const {
  std::lock_guard lock(mutex_);
  return exports_;
}

}  // namespace hydrate::nbd
