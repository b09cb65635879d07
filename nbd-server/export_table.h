#pragma once

#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

#include "engine/export.h"

namespace hydrate::nbd {

// The exports a server offers, looked up by name from any connection's thread.
class ExportTable {
 public:
  void add(std::shared_ptr<Export> export_, bool is_default);
  // The export named `name`; the empty name means the default export: the one marked default,
  // else the only export if there is exactly one. Null when there is none.
  std::shared_ptr<Export> find(std::string_view name) const;
  std::vector<std::shared_ptr<Export>> all() const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<Export>> exports_;
  std::shared_ptr<Export> default_;
};

}  // namespace hydrate::nbd
