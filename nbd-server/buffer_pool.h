#pragma once

#include <array>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

namespace hydrate::nbd {

// Page-aligned payload buffers for one connection, recycled by power-of-two size class so a
// steady stream of 4 KiB or 1 MiB requests allocates nothing after warm-up. Single-threaded
// (a connection lives on one event loop). Buffers are not zeroed.
class BufferPool {
 public:
  struct Free {
    void operator()(std::byte* p) const { std::free(p); }
  };

  class Buffer {
   public:
    Buffer() = default;
    std::byte* data() const { return storage_.get(); }
    size_t size() const { return size_; }
    size_t capacity() const { return capacity_; }
    std::span<std::byte> span() const { return {storage_.get(), size_}; }
    explicit operator bool() const { return storage_ != nullptr; }

   private:
    friend class BufferPool;
    std::unique_ptr<std::byte, Free> storage_;
    size_t size_ = 0;
    size_t capacity_ = 0;
  };

  // `retain_bytes` bounds what the pool keeps for reuse.
  explicit BufferPool(size_t retain_bytes = 16u << 20);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least `size` bytes (size() == size). Throws std::bad_alloc if memory is
  // exhausted.
  Buffer get(size_t size);
  void put(Buffer buffer);

  size_t retained_bytes() const { return retained_; }

 private:
  static constexpr size_t kMinShift = 12;  // 4 KiB
  static constexpr size_t kClasses = 14;   // 4 KiB … 32 MiB
  std::array<std::vector<std::unique_ptr<std::byte, Free>>, kClasses> free_;
  size_t retain_limit_;
  size_t retained_ = 0;
};

}  // namespace hydrate::nbd
