#pragma once

#include <asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "engine/extent.h"
#include "engine/io_result.h"

namespace hydrate {

// A writable device with a volatile write cache: the destination of a clone, a plain export's
// backing file, or a clone's metadata. Writes may complete before they are durable; flush()
// makes every completed write durable. Tests wrap this interface to inject latency, faults and
// power cuts (tests/crash), so the engine must never reach around it to the file.
class BlockDevice {
 public:
  virtual ~BlockDevice() = default;

  virtual uint64_t size() const = 0;
  // A human name for error messages: the path, or what a test wrapper calls itself.
  virtual const std::string& name() const = 0;

  virtual asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out) = 0;
  virtual asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                          bool fua) = 0;
  virtual asio::awaitable<IoResult> flush() = 0;
  // A write of data nobody is about to read (background hydration): a device may bypass its
  // cache for it. Same contract as write(…, false): durable once a later flush() completes.
  virtual asio::awaitable<IoResult> write_uncached(uint64_t offset,
                                                   std::span<const std::byte> data) {
    return write(offset, data, false);
  }
  // Afterwards the range reads as zero. `may_unmap` allows deallocating (punching) it.
  virtual asio::awaitable<IoResult> write_zeroes(uint64_t offset, uint64_t length,
                                                 bool may_unmap) = 0;
  // Deallocate if possible; contents afterwards are unspecified unless discard_zeroes().
  virtual asio::awaitable<IoResult> discard(uint64_t offset, uint64_t length) = 0;
  // `base:allocation` extents from `offset`, covering at most `length` bytes.
  virtual asio::awaitable<IoResult> allocation(uint64_t offset, uint64_t length,
                                               ExtentList& out) = 0;

  // True when write_zeroes() is cheaper than writing zero buffers (FAST_ZERO may succeed).
  virtual bool fast_zero() const = 0;
  virtual bool discard_zeroes() const = 0;
};

}  // namespace hydrate
