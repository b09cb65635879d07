#pragma once

#include <vector>

#include "engine/export.h"

namespace hydrate::fuzz {

// A small in-memory export for the fuzzer: synchronous, deterministic, and failing on purpose
// at fixed offsets so the server's error paths are reached too. Reports zeros for the second
// half of the export and answers two metadata contexts.
class FuzzExport final : public Export {
 public:
  FuzzExport(std::string name, uint64_t size, bool read_only, uint32_t min_block);

  const ExportInfo& info() const override { return info_; }
  asio::awaitable<IoResult> read(uint64_t offset, std::span<std::byte> out,
                                 std::vector<ByteRange>* zeros) override;
  asio::awaitable<IoResult> write(uint64_t offset, std::span<const std::byte> data,
                                  WriteFlags flags) override;
  asio::awaitable<IoResult> flush() override;
  asio::awaitable<IoResult> trim(uint64_t offset, uint64_t length, WriteFlags flags) override;
  asio::awaitable<IoResult> zero(uint64_t offset, uint64_t length, ZeroFlags flags) override;
  asio::awaitable<IoResult> cache(uint64_t offset, uint64_t length) override;
  std::vector<std::string> meta_contexts() const override;
  asio::awaitable<IoResult> block_status(size_t context, uint64_t offset, uint64_t length,
                                         size_t max_extents, ExtentList& out) override;

 private:
  IoResult check(uint64_t offset, uint64_t length) const;
  ExportInfo info_;
  std::vector<std::byte> data_;
};

}  // namespace hydrate::fuzz
