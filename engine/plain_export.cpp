#include "engine/plain_export.h"

#include <algorithm>
#include <cstring>

#include "engine/file_block_device.h"

namespace hydrate {

PlainExport::PlainExport(std::shared_ptr<BlockDevice> device, PlainExportSettings settings)
    : device_(std::move(device)), file_(dynamic_cast<FileBlockDevice*>(device_.get())) {
  info_.name = std::move(settings.name);
  info_.description = std::move(settings.description);
  info_.size = device_->size();
  info_.read_only = settings.read_only;
  const bool writable = !settings.read_only;
  info_.can_flush = true;
  info_.can_fua = writable;
  info_.can_trim = writable;
  info_.can_zero = writable;
  info_.can_fast_zero = writable && device_->fast_zero();
  info_.can_cache = true;
  info_.can_multi_conn = true;
}

IoResult PlainExport::open_file(const std::string& path, const PlainExportSettings& settings,
                                BlockingPool* pool, std::shared_ptr<PlainExport>& out) {
  FileOpenOptions options;
  options.read_only = settings.read_only;
  options.pool = pool;
  std::unique_ptr<FileBlockDevice> device;
  IoResult r = FileBlockDevice::open(path, options, device);
  if (!r) return IoResult::failure(r.error, "export '" + settings.name + "': " + r.message);
  out = std::make_shared<PlainExport>(std::shared_ptr<BlockDevice>(std::move(device)), settings);
  return IoResult::success();
}

IoResult PlainExport::with_context(IoResult result) const {
  if (!result.ok()) result.message = "export '" + info_.name + "': " + result.message;
  return result;
}

IoResult PlainExport::refuse_read_only(const char* operation, uint64_t offset,
                                       uint64_t length) const {
  return IoResult::failure(EPERM, "export '" + info_.name + "' is read-only: " + operation +
                                      " at offset " + std::to_string(offset) + " (" +
                                      std::to_string(length) + " bytes) refused");
}

asio::awaitable<IoResult> PlainExport::read(uint64_t offset, std::span<std::byte> out,
                                            std::vector<ByteRange>* zeros) {
  if (zeros == nullptr || out.size() < kHoleLookupMinimum)
    co_return with_context(co_await device_->read(offset, out));

  ExtentList extents;
  IoResult r = co_await device_->allocation(offset, out.size(), extents);
  if (!r) co_return with_context(std::move(r));
  uint64_t pos = offset;
  for (const Extent& e : extents) {
    uint64_t length = std::min<uint64_t>(e.length, offset + out.size() - pos);
    std::span<std::byte> part = out.subspan(pos - offset, length);
    if (e.flags & kAllocationZero) {
      std::memset(part.data(), 0, part.size());
      if (!zeros->empty() && zeros->back().end() == pos)
        zeros->back().length += length;
      else
        zeros->push_back(ByteRange{pos, length});
    } else {
      r = co_await device_->read(pos, part);
      if (!r) co_return with_context(std::move(r));
    }
    pos += length;
    if (pos == offset + out.size()) break;
  }
  // The device may describe less than asked (it bounds its extent count): read the rest.
  if (pos < offset + out.size()) {
    r = co_await device_->read(pos, out.subspan(pos - offset));
    if (!r) co_return with_context(std::move(r));
  }
  co_return IoResult::success();
}

asio::awaitable<IoResult> PlainExport::write(uint64_t offset, std::span<const std::byte> data,
                                             WriteFlags flags) {
  if (info_.read_only) co_return refuse_read_only("write", offset, data.size());
  co_return with_context(co_await device_->write(offset, data, flags.fua));
}

asio::awaitable<IoResult> PlainExport::flush() {
  co_return with_context(co_await device_->flush());
}

asio::awaitable<IoResult> PlainExport::trim(uint64_t offset, uint64_t length, WriteFlags flags) {
  if (info_.read_only) co_return refuse_read_only("trim", offset, length);
  IoResult r = co_await device_->discard(offset, length);
  if (r && flags.fua) r = co_await device_->flush();
  co_return with_context(std::move(r));
}

asio::awaitable<IoResult> PlainExport::zero(uint64_t offset, uint64_t length, ZeroFlags flags) {
  if (info_.read_only) co_return refuse_read_only("write zeroes", offset, length);
  // FAST_ZERO: the client would rather write zeros itself than wait for us to do it slowly.
  if (flags.fast_only && !device_->fast_zero())
    co_return IoResult::failure(
        ENOTSUP,
        "export '" + info_.name + "': fast zeroing is not supported by " + device_->name());
  IoResult r = co_await device_->write_zeroes(offset, length, flags.may_trim);
  if (r && flags.fua) r = co_await device_->flush();
  co_return with_context(std::move(r));
}

asio::awaitable<IoResult> PlainExport::cache(uint64_t offset, uint64_t length) {
  if (file_ != nullptr) co_await file_->prefetch(offset, length);
  co_return IoResult::success();
}

std::vector<std::string> PlainExport::meta_contexts() const {
  return {"base:allocation"};
}

asio::awaitable<IoResult> PlainExport::block_status(size_t context, uint64_t offset,
                                                    uint64_t length, size_t max_extents,
                                                    ExtentList& out) {
  if (context != 0)
    co_return IoResult::failure(EINVAL, "export '" + info_.name + "': unknown metadata context #" +
                                            std::to_string(context));
  ExtentList extents;
  IoResult r = co_await device_->allocation(offset, length, extents);
  if (!r) co_return with_context(std::move(r));
  if (extents.empty())  // a device must describe something; claim data rather than hole
    extents.push_back(Extent{length, 0});
  size_t keep = std::min(extents.size(), std::max<size_t>(1, max_extents));
  out.insert(out.end(), extents.begin(), extents.begin() + static_cast<ptrdiff_t>(keep));
  co_return IoResult::success();
}

}  // namespace hydrate
