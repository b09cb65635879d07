#include "nbd-server/tls_transport.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "engine/log.h"

namespace hydrate::nbd {

namespace {
constexpr size_t kReceiveChunk = 64 * 1024;
// Ciphertext is handed to the socket once this much has accumulated, so a 32 MiB reply is
// encrypted and sent in slices instead of doubling in memory.
constexpr size_t kSendThreshold = 256 * 1024;
}  // namespace

TlsTransport::TlsTransport(std::shared_ptr<TlsContext> context, std::unique_ptr<Transport> plain,
                           std::span<const std::byte> early)
    : context_(std::move(context)), plain_(std::move(plain)) {
  incoming_.assign(early.begin(), early.end());
  int rc = gnutls_init(&session_, GNUTLS_SERVER | GNUTLS_NONBLOCK);
  if (rc < 0) {
    session_ = nullptr;
    init_error_ = gnutls_strerror(rc);
    return;
  }
  if ((rc = gnutls_priority_set(session_, context_->priority_)) < 0) {
    init_error_ = gnutls_strerror(rc);
    return;
  }
  if (context_->x509_) {
    gnutls_credentials_set(session_, GNUTLS_CRD_CERTIFICATE, context_->x509_);
    if (context_->settings_.verify_peer)
      gnutls_certificate_server_set_request(session_, GNUTLS_CERT_REQUIRE);
  }
  if (context_->psk_) gnutls_credentials_set(session_, GNUTLS_CRD_PSK, context_->psk_);
  gnutls_transport_set_ptr(session_, this);
  gnutls_transport_set_pull_function(session_, &TlsTransport::pull);
  gnutls_transport_set_pull_timeout_function(session_, &TlsTransport::pull_timeout);
  gnutls_transport_set_push_function(session_, &TlsTransport::push);
  gnutls_handshake_set_timeout(session_, 0);  // the connection's handshake timer bounds it
}

TlsTransport::~TlsTransport() {
  if (session_) gnutls_deinit(session_);
}

ssize_t TlsTransport::pull(gnutls_transport_ptr_t p, void* data, size_t size) {
  auto* self = static_cast<TlsTransport*>(p);
  size_t available = self->incoming_.size() - self->incoming_pos_;
  if (available == 0) {
    gnutls_transport_set_errno(self->session_, EAGAIN);
    return -1;
  }
  size_t n = std::min(size, available);
  std::memcpy(data, self->incoming_.data() + self->incoming_pos_, n);
  self->incoming_pos_ += n;
  if (self->incoming_pos_ == self->incoming_.size()) {
    self->incoming_.clear();
    self->incoming_pos_ = 0;
  }
  return static_cast<ssize_t>(n);
}

ssize_t TlsTransport::push(gnutls_transport_ptr_t p, const void* data, size_t size) {
  auto* self = static_cast<TlsTransport*>(p);
  const auto* bytes = static_cast<const std::byte*>(data);
  self->outgoing_.insert(self->outgoing_.end(), bytes, bytes + size);
  return static_cast<ssize_t>(size);
}

int TlsTransport::pull_timeout(gnutls_transport_ptr_t p, unsigned) {
  auto* self = static_cast<TlsTransport*>(p);
  return self->incoming_.size() > self->incoming_pos_ ? 1 : 0;
}

asio::awaitable<bool> TlsTransport::receive_more(std::error_code& ec) {
  if (incoming_pos_ > 0) {
    incoming_.erase(incoming_.begin(), incoming_.begin() + static_cast<ptrdiff_t>(incoming_pos_));
    incoming_pos_ = 0;
  }
  size_t at = incoming_.size();
  incoming_.resize(at + kReceiveChunk);
  size_t n = co_await plain_->read_some(std::span(incoming_.data() + at, kReceiveChunk), ec);
  incoming_.resize(at + n);
  co_return !ec && n > 0;
}

// Only one coroutine writes to the inner transport at a time. Ciphertext produced while a
// write is under way stays in outgoing_ and the active sender picks it up before it returns.
asio::awaitable<void> TlsTransport::send_pending(std::error_code& ec) {
  if (sending_active_) co_return;
  sending_active_ = true;
  while (!outgoing_.empty() && !ec) {
    sending_.clear();
    sending_.swap(outgoing_);
    std::vector<asio::const_buffer> buffers{asio::buffer(sending_.data(), sending_.size())};
    co_await plain_->write(buffers, ec);
  }
  sending_active_ = false;
}

asio::awaitable<bool> TlsTransport::handshake(std::string& why) {
  if (!init_error_.empty()) {
    why = "cannot start a TLS session: " + init_error_;
    co_return false;
  }
  std::error_code ec;
  for (;;) {
    int rc = gnutls_handshake(session_);
    co_await send_pending(ec);
    if (ec) {
      why = "sending to the client failed: " + ec.message();
      co_return false;
    }
    if (rc == GNUTLS_E_SUCCESS) break;
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal(rc)) {
      if (rc != GNUTLS_E_AGAIN) continue;
      bool received = co_await receive_more(ec);
      if (!received) {
        why = "client closed the connection during the TLS handshake" +
              (ec ? ": " + ec.message() : std::string());
        co_return false;
      }
      continue;
    }
    why = gnutls_strerror(rc);
    co_return false;
  }
  if (context_->x509_ && context_->settings_.verify_peer &&
      gnutls_certificate_type_get(session_) == GNUTLS_CRT_X509) {
    unsigned status = 0;
    int rc = gnutls_certificate_verify_peers2(session_, &status);
    if (rc < 0 || status != 0) {
      gnutls_datum_t text{};
      std::string detail = rc < 0 ? gnutls_strerror(rc) : "certificate rejected";
      if (rc >= 0 &&
          gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
        detail = reinterpret_cast<const char*>(text.data);
        gnutls_free(text.data);
      }
      why = "client certificate verification failed: " + detail;
      co_return false;
    }
  }
  co_return true;
}

std::string TlsTransport::description() const {
  if (!session_) return "none";
  std::string s;
  if (char* desc = gnutls_session_get_desc(session_)) {
    s = desc;
    gnutls_free(desc);
  }
  if (context_->psk_)
    if (const char* user = gnutls_psk_server_get_username(session_))
      s += " psk-user=" + std::string(user);
  return s;
}

asio::awaitable<size_t> TlsTransport::read_some(std::span<std::byte> into, std::error_code& ec) {
  for (;;) {
    ssize_t rc = gnutls_record_recv(session_, into.data(), into.size());
    if (rc > 0) co_return static_cast<size_t>(rc);
    if (rc == 0 || rc == GNUTLS_E_PREMATURE_TERMINATION) {
      ec = asio::error::eof;
      co_return 0;
    }
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
      // Reading can produce records to send (TLS 1.3 key updates); send them unless the
      // writer is busy, which then sends them itself.
      if (!outgoing_.empty()) {
        std::error_code send_ec;
        co_await send_pending(send_ec);
      }
      if (!co_await receive_more(ec)) {
        if (!ec) ec = asio::error::eof;
        co_return 0;
      }
      continue;
    }
    if (!gnutls_error_is_fatal(static_cast<int>(rc))) continue;
    log::info("nbd.tls_error",
              {{"during", "receive"}, {"error", gnutls_strerror(static_cast<int>(rc))}});
    ec = std::make_error_code(std::errc::protocol_error);
    co_return 0;
  }
}

asio::awaitable<void> TlsTransport::write(const std::vector<asio::const_buffer>& buffers,
                                          std::error_code& ec) {
  for (const asio::const_buffer& b : buffers) {
    const auto* p = static_cast<const std::byte*>(b.data());
    size_t left = b.size();
    while (left > 0) {
      ssize_t rc = gnutls_record_send(session_, p, left);
      if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
        co_await send_pending(ec);
        if (ec) co_return;
        continue;
      }
      if (rc < 0) {
        log::info("nbd.tls_error",
                  {{"during", "send"}, {"error", gnutls_strerror(static_cast<int>(rc))}});
        ec = std::make_error_code(std::errc::protocol_error);
        co_return;
      }
      p += rc;
      left -= static_cast<size_t>(rc);
      if (outgoing_.size() >= kSendThreshold) {
        co_await send_pending(ec);
        if (ec) co_return;
      }
    }
  }
  co_await send_pending(ec);
}

asio::awaitable<void> TlsTransport::finish() {
  if (session_) {
    gnutls_bye(session_, GNUTLS_SHUT_WR);
    std::error_code ec;
    co_await send_pending(ec);
  }
  co_await plain_->finish();
}

}  // namespace hydrate::nbd
