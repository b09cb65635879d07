#include "tests/fuzz/fuzz_export.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hydrate::fuzz {

namespace {
// Requests touching this offset fail, so error replies are produced too.
constexpr uint64_t kFailingOffset = 12288;
}  // namespace

FuzzExport::FuzzExport(std::string name, uint64_t size, bool read_only, uint32_t min_block)
    : data_(size) {
  info_.name = std::move(name);
  info_.description = "fuzz export";
  info_.size = size;
  info_.read_only = read_only;
  info_.min_block = min_block;
}

IoResult FuzzExport::check(uint64_t offset, uint64_t length) const {
  // The server promised to validate ranges; a violation is a server bug worth a crash.
  if (offset > info_.size || length > info_.size - offset) std::abort();
  if (offset <= kFailingOffset && kFailingOffset < offset + length)
    return IoResult::failure(EIO, "fuzz export: injected failure");
  return IoResult::success();
}

asio::awaitable<IoResult> FuzzExport::read(uint64_t offset, std::span<std::byte> out,
                                           std::vector<ByteRange>* zeros) {
  IoResult r = check(offset, out.size());
  if (!r) co_return r;
  std::memcpy(out.data(), data_.data() + offset, out.size());
  uint64_t half = info_.size / 2;
  if (zeros && offset + out.size() > half) {
    uint64_t from = std::max(offset, half);
    zeros->push_back({from, offset + out.size() - from});
    std::memset(out.data() + (from - offset), 0, offset + out.size() - from);
  }
  co_return r;
}

asio::awaitable<IoResult> FuzzExport::write(uint64_t offset, std::span<const std::byte> data,
                                            WriteFlags) {
  if (info_.read_only) std::abort();
  IoResult r = check(offset, data.size());
  if (!r) co_return r;
  std::memcpy(data_.data() + offset, data.data(), data.size());
  co_return r;
}

asio::awaitable<IoResult> FuzzExport::flush() {
  co_return IoResult::success();
}

asio::awaitable<IoResult> FuzzExport::trim(uint64_t offset, uint64_t length, WriteFlags) {
  if (info_.read_only) std::abort();
  co_return check(offset, length);
}

asio::awaitable<IoResult> FuzzExport::zero(uint64_t offset, uint64_t length, ZeroFlags flags) {
  if (info_.read_only) std::abort();
  IoResult r = check(offset, length);
  if (!r) co_return r;
  if (flags.fast_only && (offset & 1)) co_return IoResult::failure(ENOTSUP, "not fast");
  std::memset(data_.data() + offset, 0, length);
  co_return r;
}

asio::awaitable<IoResult> FuzzExport::cache(uint64_t offset, uint64_t length) {
  co_return check(offset, length);
}

std::vector<std::string> FuzzExport::meta_contexts() const {
  return {"base:allocation", "hydrate:state"};
}

asio::awaitable<IoResult> FuzzExport::block_status(size_t context, uint64_t offset, uint64_t length,
                                                   size_t max_extents, ExtentList& out) {
  IoResult r = check(offset, length);
  if (!r) co_return r;
  // Deliberately untidy extents (a zero-length one, lengths past the request) to exercise
  // the server's clipping.
  out.push_back({0, 1});
  for (uint64_t at = offset; at < offset + length && out.size() < max_extents + 1;) {
    uint64_t step = 1000 + (at % 7) * 512;
    out.push_back({step, static_cast<uint32_t>((at / step + context) % 4)});
    at += step;
  }
  co_return r;
}

}  // namespace hydrate::fuzz
