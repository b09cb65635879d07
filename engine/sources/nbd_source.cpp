#include "engine/sources/nbd_source.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <cerrno>

namespace hydrate {
namespace {

// NBD_CMD_BLOCK_STATUS and NBD_CMD_TRIM carry a 32-bit length. This is the largest multiple of
// the largest legal minimum block size (64 KiB) that fits, so any aligned request stays aligned.
constexpr uint64_t kMaxCommandLength = (uint64_t{1} << 32) - (uint64_t{1} << 16);

}  // namespace

NbdSource::NbdSource(IoThreads& threads, NbdUri uri, SourceOptions options,
                     RequestRouter::PrepareConnect prepare_connect)
    : uri_(std::move(uri)),
      options_(options),
      router_(
          std::make_shared<RequestRouter>(threads, uri_, options_, std::move(prepare_connect))) {}

NbdSource::~NbdSource() {
  if (!router_->is_closed()) router_->close_detached();
}

asio::awaitable<IoResult> NbdSource::open() {
  co_return co_await router_->open();
}

uint64_t NbdSource::size() const {
  return router_->server().size;
}

unsigned NbdSource::parallelism() const {
  return router_->planned_connections() * std::max(1u, options_.depth_per_connection);
}

bool NbdSource::can_discard() const {
  const NbdServerInfo server = router_->server();
  return options_.writable && router_->is_open() && server.can_trim && !server.read_only;
}

IoResult NbdSource::check(const char* operation, uint64_t offset, uint64_t length) const {
  if (router_->is_closed())
    return IoResult::failure(ESHUTDOWN, "source " + identity() + " is closed");
  if (!router_->is_open())
    return IoResult::failure(EINVAL, "source " + identity() + " is not open");
  const uint64_t size = router_->server().size;
  if (offset > size || length > size - offset)
    return IoResult::failure(EINVAL, "source " + identity() + ": " + operation + " at offset " +
                                         std::to_string(offset) + " (" + std::to_string(length) +
                                         " bytes) goes beyond its end (" + std::to_string(size) +
                                         " bytes)");
  return IoResult::success();
}

asio::awaitable<IoResult> NbdSource::read(uint64_t offset, std::span<std::byte> out) {
  if (IoResult r = check("read", offset, out.size()); !r) co_return r;
  co_return co_await run(SourceRequest::Kind::read, offset, out.size(), router_->max_request(),
                         out.data(), nullptr);
}

asio::awaitable<IoResult> NbdSource::read_background(uint64_t offset, std::span<std::byte> out) {
  if (IoResult r = check("read", offset, out.size()); !r) co_return r;
  // Not cut smaller than the server allows: a link shared per request (nbdkit's rate filter,
  // TCP flows) gives a client's read 1/(N+1) of it with N background requests in flight, so
  // fewer, link-sized batches (WindowController) serve clients better than many pieces.
  co_return co_await run(SourceRequest::Kind::read, offset, out.size(), router_->max_request(),
                         out.data(), nullptr, true);
}

asio::awaitable<IoResult> NbdSource::block_status(uint64_t offset, uint64_t length,
                                                  ExtentList& out) {
  // Scanners ask for huge ranges; only the part before the end is meant.
  if (router_->is_open() && offset < size()) length = std::min(length, size() - offset);
  if (IoResult r = check("block status", offset, length); !r) co_return r;
  // One command; the server may describe less than asked, which the contract allows.
  length = std::min(length, kMaxCommandLength);
  co_return co_await run(SourceRequest::Kind::block_status, offset, length, length, nullptr, &out);
}

asio::awaitable<IoResult> NbdSource::discard(uint64_t offset, uint64_t length) {
  if (IoResult r = check("discard", offset, length); !r) co_return r;
  if (!can_discard()) {
    const char* why =
        !options_.writable ? "it was not opened writable" : "the server does not allow trimming it";
    co_return IoResult::failure(EPERM, "source " + identity() + ": cannot discard at offset " +
                                           std::to_string(offset) + ": " + why);
  }
  co_return co_await run(SourceRequest::Kind::trim, offset, length, kMaxCommandLength, nullptr,
                         nullptr);
}

asio::awaitable<IoResult> NbdSource::run(SourceRequest::Kind kind, uint64_t offset, uint64_t length,
                                         uint64_t piece, std::byte* data, ExtentList* extents,
                                         bool background) {
  if (length == 0) co_return IoResult::success();
  const size_t count = static_cast<size_t>((length + piece - 1) / piece);
  auto group = std::make_shared<RequestGroup>(count);
  const auto deadline = SourceRequest::Clock::now() + options_.source_timeout;
  for (uint64_t done = 0; done < length; done += piece) {
    auto request = std::make_unique<SourceRequest>();
    request->kind = kind;
    request->background = background;
    request->offset = offset + done;
    request->length = std::min(piece, length - done);
    request->data = data ? data + done : nullptr;
    request->extents = extents;
    request->deadline = deadline;
    request->group = group;
    router_->submit(std::move(request));
  }
  co_return co_await group->wait();
}

asio::awaitable<void> NbdSource::close() {
  co_await router_->close();
}

}  // namespace hydrate
