#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/export.h"
#include "nbd-server/receive_buffer.h"
#include "nbd-server/server_state.h"
#include "nbd-server/transport.h"

namespace hydrate::nbd {

// What option haggling settled, handed to the transmission phase.
struct NegotiatedSession {
  std::shared_ptr<Export> export_;
  bool structured_replies = false;
  // Selected metadata contexts, as indexes into export_->meta_contexts(). The context ID sent
  // on the wire is the index + 1.
  std::vector<size_t> meta_contexts;
};

// Limits on what a client may send before transmission (DoS bounds).
struct HandshakeLimits {
  // Option payloads up to this size are read and parsed.
  uint32_t max_option_payload = 64 * 1024;
  // Larger ones up to this size are skipped and refused with NBD_REP_ERR_TOO_BIG; beyond it
  // the connection is dropped.
  uint32_t max_skipped_payload = 16u << 20;
  // Options per handshake: this many plus four per export (a client listing every export
  // and asking INFO and contexts for each stays well inside).
  unsigned base_options = 64;
};

// The fixed-newstyle handshake (nbd.md §1.2–1.3, §1.15) from the server side. `transport` is
// the connection's stream; STARTTLS replaces it with a TLS transport in place.
class Handshake {
 public:
  Handshake(ServerState& state, std::unique_ptr<Transport>& transport, ReceiveBuffer& in,
            HandshakeLimits limits = {});

  // The negotiated session once the client entered transmission; nullopt when the handshake
  // ended without it. Then ended_by_client() says whether that was the client's choice
  // (ABORT, close) and failure() says what went wrong otherwise.
  asio::awaitable<std::optional<NegotiatedSession>> run();

  const std::string& failure() const { return failure_; }
  bool ended_by_client() const { return ended_by_client_; }
  const std::string& export_name() const { return export_name_; }
  unsigned options() const { return options_; }

 private:
  enum class Step { next, enter_transmission, end };

  asio::awaitable<Step> handle_option(uint32_t option, std::vector<std::byte>& data);
  asio::awaitable<Step> export_name(std::vector<std::byte>& data);
  asio::awaitable<Step> info_or_go(uint32_t option, std::vector<std::byte>& data);
  asio::awaitable<Step> list(uint32_t option, std::vector<std::byte>& data);
  asio::awaitable<Step> meta_context(uint32_t option, std::vector<std::byte>& data);
  asio::awaitable<Step> start_tls(std::vector<std::byte>& data);

  // Encodes an option reply into the pending output; flush() sends it.
  void reply(uint32_t option, uint32_t type, std::span<const std::byte> data = {});
  void reply_error(uint32_t option, uint32_t type, std::string_view message);
  asio::awaitable<bool> flush();
  Step fail(std::string reason);
  bool tls_required() const;

  ServerState& state_;
  std::unique_ptr<Transport>& transport_;
  ReceiveBuffer& in_;
  HandshakeLimits limits_;
  std::vector<std::byte> out_;
  std::error_code ec_;

  bool fixed_newstyle_ = false;
  bool no_zeroes_ = false;
  bool structured_replies_ = false;
  std::vector<size_t> meta_contexts_;
  std::string meta_contexts_export_;  // export the selection was made for
  std::shared_ptr<Export> chosen_;
  std::string export_name_;
  unsigned options_ = 0;
  std::string failure_;
  bool ended_by_client_ = false;
};

}  // namespace hydrate::nbd
