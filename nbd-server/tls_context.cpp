#include "nbd-server/tls_context.h"

#include <sys/stat.h>

#include <cctype>
#include <fstream>

#include "nbd-server/server_error.h"
#include "nbd-server/tls_transport.h"

namespace hydrate::nbd {

namespace {

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string gnutls_problem(int code) {
  return gnutls_strerror(code);
}

// GnuTLS reads the PSK file itself on every handshake; checking it here turns a typo into a
// startup error instead of failed handshakes.
void check_psk_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ServerError("TLS PSK file " + path + " cannot be opened");
  std::string line;
  size_t number = 0, keys = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    size_t colon = line.find(':');
    std::string where = "TLS PSK file " + path + " line " + std::to_string(number);
    if (colon == 0 || colon == std::string::npos)
      throw ServerError(where + ": expected username:hexkey");
    std::string key = line.substr(colon + 1);
    if (key.empty() || key.size() % 2)
      throw ServerError(where + ": the key must be an even number of hex digits");
    for (char c : key)
      if (!std::isxdigit(static_cast<unsigned char>(c)))
        throw ServerError(where + ": the key must be hex digits only");
    ++keys;
  }
  if (keys == 0) throw ServerError("TLS PSK file " + path + " holds no keys");
}

}  // namespace

TlsContext::TlsContext(TlsSettings settings) : settings_(std::move(settings)) {}

TlsContext::~TlsContext() {
  if (priority_) gnutls_priority_deinit(priority_);
  if (x509_) gnutls_certificate_free_credentials(x509_);
  if (psk_) gnutls_psk_free_server_credentials(psk_);
}

std::shared_ptr<TlsContext> TlsContext::load(const TlsSettings& settings) {
  if (settings.certificates_dir.empty() && settings.psk_file.empty())
    throw ServerError("TLS is enabled but neither a certificates directory nor a PSK file is set");
  std::shared_ptr<TlsContext> ctx(new TlsContext(settings));
  int rc;
  if (!settings.certificates_dir.empty()) {
    const std::string& dir = settings.certificates_dir;
    std::string cert = dir + "/server-cert.pem", key = dir + "/server-key.pem",
                ca = dir + "/ca-cert.pem", crl = dir + "/ca-crl.pem";
    for (const std::string& f : {cert, key})
      if (!file_exists(f)) throw ServerError("TLS certificates: " + f + " does not exist");
    if ((rc = gnutls_certificate_allocate_credentials(&ctx->x509_)) < 0)
      throw ServerError("TLS: cannot allocate x509 credentials: " + gnutls_problem(rc));
    if ((rc = gnutls_certificate_set_x509_key_file(ctx->x509_, cert.c_str(), key.c_str(),
                                                   GNUTLS_X509_FMT_PEM)) < 0)
      throw ServerError("TLS certificates: cannot load " + cert + " with " + key + ": " +
                        gnutls_problem(rc));
    if (file_exists(ca)) {
      if ((rc = gnutls_certificate_set_x509_trust_file(ctx->x509_, ca.c_str(),
                                                       GNUTLS_X509_FMT_PEM)) < 0)
        throw ServerError("TLS certificates: cannot load " + ca + ": " + gnutls_problem(rc));
    } else if (settings.verify_peer) {
      throw ServerError("TLS peer verification needs " + ca + ", which does not exist");
    }
    if (file_exists(crl) && (rc = gnutls_certificate_set_x509_crl_file(ctx->x509_, crl.c_str(),
                                                                       GNUTLS_X509_FMT_PEM)) < 0)
      throw ServerError("TLS certificates: cannot load " + crl + ": " + gnutls_problem(rc));
  }
  if (!settings.psk_file.empty()) {
    check_psk_file(settings.psk_file);
    if ((rc = gnutls_psk_allocate_server_credentials(&ctx->psk_)) < 0)
      throw ServerError("TLS: cannot allocate PSK credentials: " + gnutls_problem(rc));
    if ((rc = gnutls_psk_set_server_credentials_file(ctx->psk_, settings.psk_file.c_str())) < 0)
      throw ServerError("TLS PSK file " + settings.psk_file + ": " + gnutls_problem(rc));
  }
  // GnuTLS's defaults (TLS 1.2 and 1.3, no older versions), plus the PSK key exchanges when a
  // PSK file is configured.
  const char* priority = ctx->psk_ ? "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0:+ECDHE-PSK:+DHE-PSK:+PSK"
                                   : "NORMAL:-VERS-TLS1.1:-VERS-TLS1.0";
  const char* where = nullptr;
  if ((rc = gnutls_priority_init(&ctx->priority_, priority, &where)) < 0)
    throw ServerError(std::string("TLS: priority string rejected at \"") + (where ? where : "") +
                      "\": " + gnutls_problem(rc));
  return ctx;
}

std::unique_ptr<TlsTransport> TlsContext::wrap(std::unique_ptr<Transport> plain,
                                               std::span<const std::byte> early) {
  return std::make_unique<TlsTransport>(shared_from_this(), std::move(plain), early);
}

std::string TlsContext::describe() const {
  std::string s;
  if (x509_) s += "x509:" + settings_.certificates_dir;
  if (psk_) s += std::string(s.empty() ? "" : ",") + "psk:" + settings_.psk_file;
  return s;
}

}  // namespace hydrate::nbd
