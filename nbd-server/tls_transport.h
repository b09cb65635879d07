#pragma once

#include <gnutls/gnutls.h>

#include <memory>
#include <string>
#include <vector>

#include "nbd-server/tls_context.h"
#include "nbd-server/transport.h"

namespace hydrate::nbd {

// A server-side TLS session over another Transport. GnuTLS never touches the socket: its
// push/pull callbacks only move ciphertext between memory buffers, and this class moves those
// buffers over the inner transport with coroutines, so TLS connections live on the event loop
// like plain ones.
class TlsTransport final : public Transport {
 public:
  TlsTransport(std::shared_ptr<TlsContext> context, std::unique_ptr<Transport> plain,
               std::span<const std::byte> early);
  ~TlsTransport() override;

  // Server side of the TLS handshake (and peer verification when configured). False with
  // `why` filled in when it failed; the session is then unusable.
  asio::awaitable<bool> handshake(std::string& why);
  // Cipher suite and, for PSK, the user name: for logs.
  std::string description() const;

  asio::any_io_executor executor() override { return plain_->executor(); }
  asio::awaitable<size_t> read_some(std::span<std::byte> into, std::error_code& ec) override;
  asio::awaitable<void> write(const std::vector<asio::const_buffer>& buffers,
                              std::error_code& ec) override;
  void stop_receiving() override { plain_->stop_receiving(); }
  asio::awaitable<void> finish() override;
  void close() override { plain_->close(); }
  bool encrypted() const override { return true; }

 private:
  static ssize_t pull(gnutls_transport_ptr_t self, void* data, size_t size);
  static ssize_t push(gnutls_transport_ptr_t self, const void* data, size_t size);
  static int pull_timeout(gnutls_transport_ptr_t self, unsigned ms);

  asio::awaitable<bool> receive_more(std::error_code& ec);
  asio::awaitable<void> send_pending(std::error_code& ec);

  std::shared_ptr<TlsContext> context_;
  std::unique_ptr<Transport> plain_;
  gnutls_session_t session_ = nullptr;
  std::string init_error_;
  std::vector<std::byte> incoming_;  // ciphertext received, not yet given to GnuTLS
  size_t incoming_pos_ = 0;
  std::vector<std::byte> outgoing_;  // ciphertext GnuTLS produced, not yet sent
  std::vector<std::byte> sending_;   // ciphertext being written right now
  bool sending_active_ = false;
};

}  // namespace hydrate::nbd
