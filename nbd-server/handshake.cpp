#include "nbd-server/handshake.h"

#include <algorithm>
#include <cstdio>

#include "engine/log.h"
#include "nbd-server/export_terms.h"
#include "nbd-server/option_parsing.h"
#include "nbd-server/protocol.h"
#include "nbd-server/tls_transport.h"
#include "nbd-server/wire.h"

namespace hydrate::nbd {

using namespace proto;

namespace {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string_view as_string(const std::vector<std::byte>& data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

std::string option_label(uint32_t option) {
  return std::string(option_name(option)) + " (" + std::to_string(option) + ")";
}

}  // namespace

Handshake::Handshake(ServerState& state, std::unique_ptr<Transport>& transport, ReceiveBuffer& in,
                     HandshakeLimits limits)
    : state_(state), transport_(transport), in_(in), limits_(limits) {}

bool Handshake::tls_required() const {
  return state_.settings.tls.mode == TlsSettings::Mode::require && !transport_->encrypted();
}

Handshake::Step Handshake::fail(std::string reason) {
  failure_ = std::move(reason);
  return Step::end;
}

void Handshake::reply(uint32_t option, uint32_t type, std::span<const std::byte> data) {
  wire::Writer w(out_);
  w.u64(kOptionReplyMagic);
  w.u32(option);
  w.u32(type);
  w.u32(static_cast<uint32_t>(data.size()));
  w.bytes(data);
}

void Handshake::reply_error(uint32_t option, uint32_t type, std::string_view message) {
  message = message.substr(0, kMaxString);
  reply(option, type, std::as_bytes(std::span(message.data(), message.size())));
  log::info("nbd.option_refused",
            {{"option", option_name(option)}, {"reply", hex(type)}, {"why", message}});
}

asio::awaitable<bool> Handshake::flush() {
  if (out_.empty()) co_return true;
  std::vector<asio::const_buffer> buffers{asio::buffer(out_.data(), out_.size())};
  co_await transport_->write(buffers, ec_);
  out_.clear();
  if (ec_) {
    failure_ = "writing to the client failed: " + ec_.message();
    co_return false;
  }
  co_return true;
}

asio::awaitable<std::optional<NegotiatedSession>> Handshake::run() {
  {
    wire::Writer w(out_);
    w.u64(kInitMagic);
    w.u64(kOptionMagic);
    w.u16(kFlagFixedNewstyle | kFlagNoZeroes);
  }
  if (!co_await flush()) co_return std::nullopt;

  if (!co_await in_.fill(*transport_, 4, ec_)) {
    ended_by_client_ = true;
    failure_ = "client closed the connection before sending its flags";
    co_return std::nullopt;
  }
  uint32_t client_flags = wire::load_u32(in_.data());
  in_.consume(4);
  if (client_flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) {
    failure_ = "client flags " + hex(client_flags) + " include bits the server did not offer";
    co_return std::nullopt;
  }
  fixed_newstyle_ = client_flags & kClientFlagFixedNewstyle;
  no_zeroes_ = client_flags & kClientFlagNoZeroes;

  const unsigned max_options =
      limits_.base_options + 4 * static_cast<unsigned>(state_.exports.all().size());
  std::vector<std::byte> data;
  for (;;) {
    if (!co_await in_.fill(*transport_, 16, ec_)) {
      ended_by_client_ = ec_ == asio::error::eof || ec_ == asio::error::connection_reset;
      failure_ = "connection ended during option haggling: " + ec_.message();
      co_return std::nullopt;
    }
    uint64_t magic = wire::load_u64(in_.data());
    uint32_t option = wire::load_u32(in_.data() + 8);
    uint32_t length = wire::load_u32(in_.data() + 12);
    in_.consume(16);
    if (magic != kOptionMagic) {
      failure_ = "option header has magic " + hex(magic) + ", expected IHAVEOPT";
      co_return std::nullopt;
    }
    if (++options_ > max_options) {
      failure_ = "client sent more than " + std::to_string(max_options) + " options";
      co_return std::nullopt;
    }
    if (!fixed_newstyle_ && option != kOptExportName) {
      failure_ =
          "option " + option_label(option) + " from a client that did not accept fixed newstyle";
      co_return std::nullopt;
    }
    if (length > limits_.max_option_payload) {
      if (option == kOptExportName || length > limits_.max_skipped_payload) {
        failure_ = "option " + option_label(option) + " carries " + std::to_string(length) +
                   " bytes, more than the " + std::to_string(limits_.max_option_payload) +
                   " allowed";
        co_return std::nullopt;
      }
      if (!co_await in_.discard(*transport_, length, ec_)) {
        failure_ = "connection ended inside an option payload: " + ec_.message();
        co_return std::nullopt;
      }
      reply_error(option, kRepErrTooBig,
                  "option payload of " + std::to_string(length) + " bytes exceeds the limit of " +
                      std::to_string(limits_.max_option_payload));
      if (!co_await flush()) co_return std::nullopt;
      continue;
    }
    data.resize(length);
    if (!co_await in_.read_exact(*transport_, data, ec_)) {
      failure_ = "connection ended inside an option payload: " + ec_.message();
      co_return std::nullopt;
    }
    log::debug("nbd.option", {{"option", option_name(option)}, {"length", length}});
    Step step = co_await handle_option(option, data);
    if (!co_await flush()) co_return std::nullopt;
    if (step == Step::end) co_return std::nullopt;
    if (step == Step::enter_transmission) {
      NegotiatedSession session;
      session.export_ = chosen_;
      session.structured_replies = structured_replies_;
      if (meta_contexts_export_ == chosen_->info().name) session.meta_contexts = meta_contexts_;
      co_return session;
    }
  }
}

asio::awaitable<Handshake::Step> Handshake::handle_option(uint32_t option,
                                                          std::vector<std::byte>& data) {
  if (option == kOptExportName) co_return co_await export_name(data);
  if (option == kOptAbort) {
    reply(option, kRepAck);
    ended_by_client_ = true;
    failure_ = "client sent ABORT";
    co_return Step::end;
  }
  if (state_.shutting_down.load()) {
    reply_error(option, kRepErrShutdown, "server is shutting down");
    co_return Step::next;
  }
  if (option == kOptStartTls) co_return co_await start_tls(data);
  if (tls_required()) {
    reply_error(option, kRepErrTlsReqd, "this server requires TLS: send STARTTLS first");
    co_return Step::next;
  }
  switch (option) {
    case kOptList:
      co_return co_await list(option, data);
    case kOptInfo:
    case kOptGo:
      co_return co_await info_or_go(option, data);
    case kOptStructuredReply:
      if (!data.empty()) {
        reply_error(option, kRepErrInvalid, "STRUCTURED_REPLY carries no data");
        co_return Step::next;
      }
      structured_replies_ = true;
      reply(option, kRepAck);
      co_return Step::next;
    case kOptListMetaContext:
    case kOptSetMetaContext:
      co_return co_await meta_context(option, data);
  }
  reply_error(option, kRepErrUnsup, "option " + option_label(option) + " is not supported");
  co_return Step::next;
}

asio::awaitable<Handshake::Step> Handshake::export_name(std::vector<std::byte>& data) {
  std::string_view name = as_string(data);
  export_name_ = std::string(name);
  if (auto bad = check_protocol_string("export name", name)) co_return fail(*bad);
  // EXPORT_NAME has no error reply: every refusal is a disconnect.
  if (state_.shutting_down.load()) co_return fail("EXPORT_NAME while the server shuts down");
  if (tls_required()) co_return fail("EXPORT_NAME without TLS on a server that requires TLS");
  chosen_ = state_.exports.find(name);
  if (!chosen_) co_return fail("EXPORT_NAME asked for unknown export \"" + export_name_ + "\"");
  const ExportInfo& info = chosen_->info();
  export_name_ = info.name;
  wire::Writer w(out_);
  w.u64(info.size);
  w.u16(transmission_flags(info, structured_replies_));
  if (!no_zeroes_) w.zeroes(kExportNameReplyZeroes);
  co_return Step::enter_transmission;
}

asio::awaitable<Handshake::Step> Handshake::info_or_go(uint32_t option,
                                                       std::vector<std::byte>& data) {
  InfoRequest request;
  if (auto bad = parse_info_request(data, request)) {
    reply_error(option, kRepErrInvalid, std::string(option_name(option)) + ": " + *bad);
    co_return Step::next;
  }
  auto found = state_.exports.find(request.export_name);
  if (!found) {
    reply_error(option, kRepErrUnknown,
                request.export_name.empty() ? std::string("there is no default export")
                                            : "no export named \"" + request.export_name + "\"");
    co_return Step::next;
  }
  const ExportInfo& info = found->info();
  std::vector<std::byte> item;
  auto send_item = [&](auto&& fill) {
    item.clear();
    wire::Writer w(item);
    fill(w);
    reply(option, kRepInfo, item);
  };
  send_item([&](wire::Writer& w) {
    w.u16(kInfoExport);
    w.u64(info.size);
    w.u16(transmission_flags(info, structured_replies_));
  });
  std::vector<uint16_t> items = request.items;
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  for (uint16_t type : items) {
    if (type == kInfoName) {
      send_item([&](wire::Writer& w) {
        w.u16(kInfoName);
        w.string(info.name.substr(0, kMaxString));
      });
    } else if (type == kInfoDescription && !info.description.empty()) {
      send_item([&](wire::Writer& w) {
        w.u16(kInfoDescription);
        w.string(info.description.substr(0, kMaxString));
      });
    }
  }
  // Block sizes go out whether asked or not: a client that did not ask may still use them,
  // and one that did must obey them.
  BlockSizes sizes = advertised_block_sizes(info);
  send_item([&](wire::Writer& w) {
    w.u16(kInfoBlockSize);
    w.u32(sizes.minimum);
    w.u32(sizes.preferred);
    w.u32(sizes.maximum);
  });
  reply(option, kRepAck);
  if (option == kOptGo) {
    chosen_ = std::move(found);
    export_name_ = info.name;
    co_return Step::enter_transmission;
  }
  co_return Step::next;
}

asio::awaitable<Handshake::Step> Handshake::list(uint32_t option, std::vector<std::byte>& data) {
  if (!data.empty()) {
    reply_error(option, kRepErrInvalid, "LIST carries no data");
    co_return Step::next;
  }
  std::vector<std::byte> entry;
  for (const auto& e : state_.exports.all()) {
    const ExportInfo& info = e->info();
    entry.clear();
    wire::Writer w(entry);
    std::string name = info.name.substr(0, kMaxString);
    w.u32(static_cast<uint32_t>(name.size()));
    w.string(name);
    w.string(info.description.substr(0, kMaxString));
    reply(option, kRepServer, entry);
  }
  reply(option, kRepAck);
  co_return Step::next;
}

asio::awaitable<Handshake::Step> Handshake::meta_context(uint32_t option,
                                                         std::vector<std::byte>& data) {
  const bool listing = option == kOptListMetaContext;
  // SET replaces the selection even when it fails.
  if (!listing) {
    meta_contexts_.clear();
    meta_contexts_export_.clear();
  }
  if (!structured_replies_) {
    reply_error(option, kRepErrInvalid,
                std::string(option_name(option)) + " needs STRUCTURED_REPLY first");
    co_return Step::next;
  }
  MetaContextRequest request;
  if (auto bad = parse_meta_context_request(data, request)) {
    reply_error(option, kRepErrInvalid, std::string(option_name(option)) + ": " + *bad);
    co_return Step::next;
  }
  auto found = state_.exports.find(request.export_name);
  if (!found) {
    reply_error(option, kRepErrUnknown, "no export named \"" + request.export_name + "\"");
    co_return Step::next;
  }
  const std::vector<std::string> available = found->meta_contexts();
  std::string error;
  std::vector<size_t> matched = match_meta_contexts(available, request.queries, listing, &error);
  if (!error.empty()) {
    reply_error(option, kRepErrInvalid, std::string(option_name(option)) + ": " + error);
    co_return Step::next;
  }
  std::vector<std::byte> entry;
  for (size_t index : matched) {
    entry.clear();
    wire::Writer w(entry);
    // LIST's IDs are reserved (zero); SET's are what BLOCK_STATUS chunks will carry.
    w.u32(listing ? 0 : static_cast<uint32_t>(index + 1));
    w.string(available[index]);
    reply(option, kRepMetaContext, entry);
  }
  reply(option, kRepAck);
  if (!listing) {
    meta_contexts_ = std::move(matched);
    meta_contexts_export_ = found->info().name;
  }
  co_return Step::next;
}

asio::awaitable<Handshake::Step> Handshake::start_tls(std::vector<std::byte>& data) {
  if (!data.empty()) {
    reply_error(kOptStartTls, kRepErrInvalid, "STARTTLS carries no data");
    co_return Step::next;
  }
  if (!state_.tls || state_.settings.tls.mode == TlsSettings::Mode::off) {
    reply_error(kOptStartTls, kRepErrPolicy, "TLS is not enabled on this server");
    co_return Step::next;
  }
  if (transport_->encrypted()) {
    reply_error(kOptStartTls, kRepErrInvalid, "TLS is already active");
    co_return Step::next;
  }
  reply(kOptStartTls, kRepAck);
  if (!co_await flush()) co_return Step::end;
  auto tls = state_.tls->wrap(std::move(transport_), in_.take_all());
  TlsTransport* session = tls.get();
  transport_ = std::move(tls);
  std::string why;
  if (!co_await session->handshake(why)) co_return fail("TLS handshake failed: " + why);
  // A new TLS session starts option haggling afresh (nbd.md §1.3).
  structured_replies_ = false;
  meta_contexts_.clear();
  meta_contexts_export_.clear();
  log::debug("nbd.tls_established", {{"session", session->description()}});
  co_return Step::next;
}

}  // namespace hydrate::nbd
