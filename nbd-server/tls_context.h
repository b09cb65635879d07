#pragma once

#include <gnutls/gnutls.h>

#include <memory>
#include <span>
#include <string>

#include "nbd-server/server_settings.h"
#include "nbd-server/transport.h"

namespace hydrate::nbd {

class TlsTransport;

// Server TLS credentials (GnuTLS): an x509 certificate directory in the nbdkit/qemu layout
// (server-cert.pem, server-key.pem, optional ca-cert.pem and ca-crl.pem) and/or a PSK file of
// `username:hexkey` lines (psktool format). Loaded once; shared by every connection.
class TlsContext : public std::enable_shared_from_this<TlsContext> {
 public:
  // Throws ServerError naming the file or setting that is wrong.
  static std::shared_ptr<TlsContext> load(const TlsSettings& settings);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Layers a server TLS session over `plain`; `early` holds ciphertext already received. The
  // caller must await TlsTransport::handshake() before using it.
  std::unique_ptr<TlsTransport> wrap(std::unique_ptr<Transport> plain,
                                     std::span<const std::byte> early);

  const TlsSettings& settings() const { return settings_; }
  std::string describe() const;

 private:
  friend class TlsTransport;
  explicit TlsContext(TlsSettings settings);
  TlsSettings settings_;
  gnutls_certificate_credentials_t x509_ = nullptr;
  gnutls_psk_server_credentials_t psk_ = nullptr;
  gnutls_priority_t priority_ = nullptr;
};

}  // namespace hydrate::nbd
