#include "nbd-server/buffer_pool.h"

#include <bit>
#include <new>

namespace hydrate::nbd {

namespace {
size_t size_class(size_t size) {
  size_t rounded = std::bit_ceil(std::max<size_t>(size, size_t{1} << 12));
  return static_cast<size_t>(std::countr_zero(rounded)) - 12;
}
}  // namespace

BufferPool::BufferPool(size_t retain_bytes) : retain_limit_(retain_bytes) {}
BufferPool::~BufferPool() = default;

BufferPool::Buffer BufferPool::get(size_t size) {
  Buffer b;
  size_t cls = size_class(size);
  if (cls >= kClasses) {
    // Larger than any class: not pooled.
    size_t capacity = (size + 4095) & ~size_t{4095};
    b.storage_.reset(static_cast<std::byte*>(std::aligned_alloc(4096, capacity)));
    if (!b.storage_) throw std::bad_alloc();
    b.capacity_ = capacity;
    b.size_ = size;
    return b;
  }
  size_t capacity = size_t{1} << (cls + kMinShift);
  auto& list = free_[cls];
  if (!list.empty()) {
    b.storage_ = std::move(list.back());
    list.pop_back();
    retained_ -= capacity;
  } else {
    b.storage_.reset(static_cast<std::byte*>(std::aligned_alloc(4096, capacity)));
    if (!b.storage_) throw std::bad_alloc();
  }
  b.capacity_ = capacity;
  b.size_ = size;
  return b;
}

void BufferPool::put(Buffer buffer) {
  if (!buffer.storage_) return;
  size_t cls = size_class(buffer.capacity_);
  if (cls >= kClasses || (size_t{1} << (cls + kMinShift)) != buffer.capacity_) return;
  if (retained_ + buffer.capacity_ > retain_limit_) return;
  retained_ += buffer.capacity_;
  free_[cls].push_back(std::move(buffer.storage_));
}

}  // namespace hydrate::nbd
