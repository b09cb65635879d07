#include "nbd-server/transmission.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <exception>

#include "engine/log.h"
#include "nbd-server/export_terms.h"
#include "nbd-server/protocol.h"

namespace hydrate::nbd {

using namespace proto;

struct Transmission::Slot {
  RequestHeader header;
  BufferPool::Buffer payload;
  size_t charged = 0;  // bytes counted in inflight_bytes_
  uint32_t error = 0;  // the NBD error the reply carries, for the trace
  ReplyPieces reply;
  std::vector<ByteRange> zeros;
  ExtentList extents;
};

namespace {
constexpr size_t kKeptFreeSlots = 256;

// What an exception escaping the export means for the client: EIO with the reason, since a
// request the reader accepted must always be answered. Call only inside a catch block.
IoResult internal_error() {
  try {
    throw;
  } catch (const std::exception& e) {
    return IoResult::failure(EIO, std::string("internal error: ") + e.what());
  } catch (...) {
    return IoResult::failure(EIO, "internal error: unknown exception");
  }
}

}  // namespace

Transmission::Transmission(Transport& transport, ReceiveBuffer& in, NegotiatedSession session,
                           std::string peer, TransmissionLimits limits)
    : transport_(transport),
      in_(in),
      session_(std::move(session)),
      peer_(std::move(peer)),
      limits_(limits),
      writer_wakeup_(transport.executor()),
      reader_wakeup_(transport.executor()),
      finished_(transport.executor()) {
  const ExportInfo& info = session_.export_->info();
  export_name_ = info.name;
  BlockSizes sizes = advertised_block_sizes(info);
  request_limits_.size = info.size;
  request_limits_.transmission_flags = transmission_flags(info, session_.structured_replies);
  request_limits_.min_block = sizes.minimum;
  request_limits_.max_payload = sizes.maximum;
  request_limits_.structured_replies = session_.structured_replies;
  request_limits_.meta_contexts_selected = !session_.meta_contexts.empty();
  if (!session_.meta_contexts.empty()) context_names_ = session_.export_->meta_contexts();
}

Transmission::~Transmission() = default;

std::string Transmission::describe(const RequestHeader& h) const {
  std::string command = command_name(h.type);
  if (command == "unknown") command = "command " + std::to_string(h.type);
  return "export \"" + export_name_ + "\" " + command + " offset " + std::to_string(h.offset) +
         " length " + std::to_string(h.length);
}

Transmission::Slot* Transmission::acquire() {
  Slot* slot;
  if (free_slots_.empty()) {
    slot = new Slot;
  } else {
    slot = free_slots_.back().release();
    free_slots_.pop_back();
  }
  ++live_;
  return slot;
}

void Transmission::release(Slot* slot) {
  pool_.put(std::move(slot->payload));
  slot->payload = {};
  inflight_bytes_ -= slot->charged;
  slot->charged = 0;
  slot->error = 0;
  slot->reply.clear();
  slot->zeros.clear();
  slot->extents.clear();
  --live_;
  if (free_slots_.size() < kKeptFreeSlots)
    free_slots_.emplace_back(slot);
  else
    delete slot;
  reader_wakeup_.notify();
}

void Transmission::finish(Slot* slot) {
  if (log::enabled(log::Level::debug))
    log::debug("nbd.reply", {{"peer", peer_},
                             {"command", command_name(slot->header.type)},
                             {"cookie", slot->header.cookie},
                             {"error", error_name(slot->error)}});
  queue_.push_back(slot);
  if (queue_.size() == 1) writer_wakeup_.notify();
}

void Transmission::reply_error(Slot& slot, uint32_t error, std::string_view message) {
  slot.error = error;
  ReplyBuilder reply(slot.reply);
  slot.reply.clear();
  if (session_.structured_replies)
    reply.error(slot.header.cookie, error, message);
  else
    reply.simple(slot.header.cookie, error);
}

void Transmission::reply_failure(Slot& slot, const IoResult& result, std::string_view what) {
  // Only WRITE_ZEROES may carry FAST_ZERO (check_request), so other commands never map to ENOTSUP.
  const uint32_t error =
      nbd_error_from_errno(result.error, (slot.header.flags & kCmdFlagFastZero) != 0);
  const std::string message = std::string(what) + ": " + result.message;
  // A FAST_ZERO refusal is an expected answer, not a failure worth a warning.
  const log::Level level = error == kEnotsup ? log::Level::debug : log::Level::warn;
  if (log::enabled(level))
    log::write(level, "nbd.request_failed",
               {{"peer", peer_}, {"error", error_name(error)}, {"why", message}});
  reply_error(slot, error, message);
}

bool Transmission::complete_request_buffered() const {
  if (in_.size() < kRequestHeaderSize) return false;
  RequestHeader h;
  if (!decode_request_header(in_.data(), h)) return true;  // let the reader reject it
  return h.type != kCmdWrite || in_.size() - kRequestHeaderSize >= h.length;
}

asio::awaitable<void> Transmission::run() {
  asio::co_spawn(transport_.executor(), write_replies(), asio::detached);
  try {
    co_await read_requests();
  } catch (const std::exception& e) {
    // Never leave with the writer or a request still using this object.
    end_reason_ = std::string("internal error: ") + e.what();
    log::error("nbd.connection_error", {{"peer", peer_}, {"why", end_reason_}});
    broken_ = true;
    transport_.close();
  }
  reader_done_ = true;
  writer_wakeup_.notify();
  while (!writer_done_) co_await finished_.wait();
}

void Transmission::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  transport_.stop_receiving();
  reader_wakeup_.notify();
}

asio::awaitable<void> Transmission::read_requests() {
  std::error_code ec;
  const auto executor = transport_.executor();
  for (;;) {
    while (!broken_ && (inflight_bytes_ >= limits_.max_inflight_bytes ||
                        live_ >= limits_.max_inflight_requests))
      co_await reader_wakeup_.wait();
    if (broken_) break;
    if (stopping_ && !complete_request_buffered()) {
      end_reason_ = "server shutdown";
      break;
    }
    // The common case (requests already buffered) does not enter a coroutine. co_await stays
    // out of && operands: GCC 12 has had bugs there.
    if (in_.size() < kRequestHeaderSize) {
      bool filled = co_await in_.fill(transport_, kRequestHeaderSize, ec);
      if (!filled) {
        end_reason_ = stopping_                ? "server shutdown"
                      : ec == asio::error::eof ? "client closed the connection"
                                               : "receive failed: " + ec.message();
        break;
      }
    }
    RequestHeader h;
    if (!decode_request_header(in_.data(), h)) {
      end_reason_ = "request with a bad magic number: stream out of sync";
      log::warn("nbd.protocol_violation",
                {{"peer", peer_}, {"export", export_name_}, {"why", end_reason_}});
      broken_ = true;
      transport_.close();
      break;
    }
    in_.consume(kRequestHeaderSize);
    ++requests_;
    if (log::enabled(log::Level::debug))
      log::debug("nbd.request", {{"peer", peer_},
                                 {"command", command_name(h.type)},
                                 {"flags", h.flags},
                                 {"cookie", h.cookie},
                                 {"offset", h.offset},
                                 {"length", h.length}});
    if (h.type == kCmdDisc) {
      end_reason_ = "client sent DISC";
      break;
    }

    Slot* slot = acquire();
    slot->header = h;
    RequestCheck check = check_request(h, request_limits_);
    if (h.type == kCmdWrite) {
      if (check.ok() && !allocate_payload(*slot, h.length))
        check = {kEnomem,
                 "no memory for a WRITE payload of " + std::to_string(h.length) + " bytes"};
      // A refused WRITE's payload is still read (and dropped), so the next request header is
      // found where it belongs.
      bool received;
      if (check.ok())
        received = co_await in_.read_exact(transport_, slot->payload.span(), ec);
      else
        received = co_await in_.discard(transport_, h.length, ec);
      if (!received) {
        end_reason_ = "connection ended inside a WRITE payload";
        release(slot);
        break;
      }
    }
    if (!check.ok()) {
      std::string message = describe(h) + ": " + check.reason;
      log::warn("nbd.invalid_request",
                {{"peer", peer_}, {"error", error_name(check.error)}, {"why", message}});
      reply_error(*slot, check.error, message);
      finish(slot);
      continue;
    }
    ++serving_;
    asio::co_spawn(executor, serve(slot), asio::detached);
  }
}

bool Transmission::allocate_payload(Slot& slot, size_t length) {
  try {
    slot.payload = pool_.get(length);
  } catch (const std::bad_alloc&) {
    return false;
  }
  slot.charged = length;
  inflight_bytes_ += length;
  return true;
}

asio::awaitable<void> Transmission::write_replies() {
  std::vector<Slot*> batch;
  std::vector<asio::const_buffer> buffers;
  std::error_code ec;
  for (;;) {
    if (queue_.empty()) {
      if (reader_done_ && serving_ == 0) break;
      co_await writer_wakeup_.wait();
      continue;
    }
    batch.swap(queue_);
    if (!broken_) {
      buffers.clear();
      for (Slot* s : batch) {
        for (const ReplyPieces::Piece& p : s->reply.pieces) {
          const std::byte* base = p.from_payload ? s->payload.data() : s->reply.control.data();
          buffers.emplace_back(base + p.offset, p.length);
        }
      }
      co_await transport_.write(buffers, ec);
      if (ec) {
        broken_ = true;
        if (end_reason_.empty()) end_reason_ = "sending replies failed: " + ec.message();
        transport_.close();
        reader_wakeup_.notify();
      }
    }
    for (Slot* s : batch) release(s);
    batch.clear();
  }
  writer_done_ = true;
  finished_.notify();
}

asio::awaitable<void> Transmission::serve(Slot* slot) {
  const RequestHeader& h = slot->header;
  Export& exp = *session_.export_;
  IoResult result;
  try {
    switch (h.type) {
      case kCmdRead:
        co_await serve_read(*slot);
        --serving_;
        co_return;
      case kCmdBlockStatus:
        co_await serve_block_status(*slot);
        --serving_;
        co_return;
      case kCmdWrite:
        result = co_await exp.write(h.offset, slot->payload.span(),
                                    WriteFlags{.fua = (h.flags & kCmdFlagFua) != 0});
        break;
      case kCmdFlush:
        result = co_await exp.flush();
        break;
      case kCmdTrim:
        if (h.length)
          result = co_await exp.trim(h.offset, h.length,
                                     WriteFlags{.fua = (h.flags & kCmdFlagFua) != 0});
        break;
      case kCmdWriteZeroes:
        if (h.length)
          result = co_await exp.zero(h.offset, h.length,
                                     ZeroFlags{.fua = (h.flags & kCmdFlagFua) != 0,
                                               .may_trim = !(h.flags & kCmdFlagNoHole),
                                               .fast_only = (h.flags & kCmdFlagFastZero) != 0});
        break;
      case kCmdCache:
        if (h.length) result = co_await exp.cache(h.offset, h.length);
        break;
    }
  } catch (...) {
    result = internal_error();
  }
  if (result.ok())
    ReplyBuilder(slot->reply).simple(h.cookie, 0);
  else
    reply_failure(*slot, result, describe(h));
  finish(slot);
  --serving_;
}

asio::awaitable<void> Transmission::serve_read(Slot& slot) {
  const RequestHeader& h = slot.header;
  ReplyBuilder reply(slot.reply);
  if (h.length == 0) {
    if (session_.structured_replies)
      reply.none(h.cookie);
    else
      reply.simple(h.cookie, 0);
    finish(&slot);
    co_return;
  }
  IoResult result;
  try {
    if (!allocate_payload(slot, h.length)) {
      reply_error(slot, kEnomem, describe(h) + ": no memory for the data");
      finish(&slot);
      co_return;
    }
    const bool sparse = session_.structured_replies && !(h.flags & kCmdFlagDf) &&
                        h.length >= limits_.sparse_read_threshold;
    result = co_await session_.export_->read(h.offset, slot.payload.span(),
                                             sparse ? &slot.zeros : nullptr);
  } catch (...) {
    result = internal_error();
  }
  if (!result.ok()) {
    reply_failure(slot, result, describe(h));
  } else if (session_.structured_replies) {
    build_structured_read(reply, h.cookie, h.offset, h.length, slot.zeros, limits_.min_hole);
  } else {
    reply.simple(h.cookie, 0);
    reply.payload(0, h.length);
  }
  finish(&slot);
}

asio::awaitable<void> Transmission::serve_block_status(Slot& slot) {
  const RequestHeader& h = slot.header;
  const bool req_one = h.flags & kCmdFlagReqOne;
  ReplyBuilder reply(slot.reply);
  const auto& contexts = session_.meta_contexts;
  for (size_t i = 0; i < contexts.size(); ++i) {
    const size_t context = contexts[i];
    slot.extents.clear();
    IoResult result;
    try {
      result = co_await session_.export_->block_status(
          context, h.offset, h.length, req_one ? 1 : limits_.max_extents, slot.extents);
    } catch (...) {
      result = internal_error();
    }
    // Clip to the request, drop empty extents and merge equal neighbours: the reply must
    // describe consecutive, non-empty ranges inside what was asked.
    size_t kept = 0;
    uint64_t covered = 0;
    if (result.ok()) {
      for (const Extent& e : slot.extents) {
        if (covered >= h.length) break;
        if (e.length == 0) continue;
        uint64_t length = std::min<uint64_t>(e.length, h.length - covered);
        if (kept && slot.extents[kept - 1].flags == e.flags) {
          slot.extents[kept - 1].length += length;
        } else {
          if (kept == (req_one ? 1 : limits_.max_extents)) break;
          slot.extents[kept++] = {length, e.flags};
        }
        covered += length;
      }
      slot.extents.resize(kept);
      if (kept == 0)
        result = IoResult::failure(
            EIO, "the export reported no extents for context " + context_names_[context]);
    }
    if (!result.ok()) {
      // Chunks already encoded for earlier contexts are dropped: the reply is the error alone.
      reply_failure(slot, result, describe(h) + " (" + context_names_[context] + ")");
      finish(&slot);
      co_return;
    }
    reply.block_status(h.cookie, static_cast<uint32_t>(context + 1), slot.extents,
                       i + 1 == contexts.size());
  }
  finish(&slot);
}

}  // namespace hydrate::nbd
