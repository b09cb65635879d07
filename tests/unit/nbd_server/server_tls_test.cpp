// TLS (STARTTLS) with PSK and x509, driven by libnbd; certificates are made with GnuTLS's
// certtool in a temp dir.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "nbd-server/protocol.h"
#include "tests/unit/nbd_server/raw_client.h"
#include "tests/unit/nbd_server/test_server.h"

namespace hydrate::nbd::testing {
namespace {

using namespace proto;

constexpr const char* kPskKey = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string write_psk_file(const TempDir& dir, const std::string& key = kPskKey) {
  std::string path = dir.file("keys.psk");
  std::ofstream(path) << "alice:" << key << "\n";
  return path;
}

ServerSettings tls_settings(TlsSettings::Mode mode, const std::string& psk_file,
                            const std::string& certificates = "") {
  ServerSettings s;
  s.tls.mode = mode;
  s.tls.psk_file = psk_file;
  s.tls.certificates_dir = certificates;
  return s;
}

void psk_client(NbdHandle& h, const std::string& psk_file, int tls = LIBNBD_TLS_REQUIRE) {
  nbd_set_tls(h, tls);
  nbd_set_tls_psk_file(h, psk_file.c_str());
  nbd_set_tls_username(h, "alice");
}

std::string start_error(ServerSettings settings) {
  IoThreads threads(1);
  settings.listen = {"tcp://127.0.0.1:0"};
  settings.socket_activation = false;
  Server server(threads, std::move(settings));
  try {
    server.start();
  } catch (const ServerError& e) {
    return e.what();
  }
  return "started";
}

TEST(Tls, PskRequiredRoundTrip) {
  TempDir keys;
  TestServer server(tls_settings(TlsSettings::Mode::require, write_psk_file(keys)));
  auto disk = server.add(make_info("disk", 16 << 20));
  server.start();
  NbdHandle h;
  psk_client(h, keys.file("keys.psk"));
  nbd_add_meta_context(h, "base:allocation");
  ASSERT_EQ(nbd_connect_unix(h, server.socket().c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_tls_negotiated(h), 1);
  EXPECT_EQ(nbd_get_structured_replies_negotiated(h), 1);
  EXPECT_EQ(nbd_can_meta_context(h, "base:allocation"), 1);
  // Larger than one TLS record and than the transport's send threshold.
  auto data = pattern(4 << 20, 11);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 4096, 0), 0) << nbd_error_text();
  std::vector<std::byte> back(data.size());
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 4096, 0), 0) << nbd_error_text();
  EXPECT_EQ(back, data);
  EXPECT_EQ(disk->contents(4096, 4096), std::vector<std::byte>(data.begin(), data.begin() + 4096));
  // Pipelined requests over TLS.
  std::vector<std::vector<std::byte>> bufs(32, std::vector<std::byte>(65536));
  for (size_t i = 0; i < bufs.size(); ++i)
    ASSERT_GT(nbd_aio_pread(h, bufs[i].data(), 65536, 4096 + i * 65536, NBD_NULL_COMPLETION, 0), 0);
  while (nbd_aio_in_flight(h) > 0) ASSERT_GE(nbd_poll(h, 20000), 0);
  for (size_t i = 0; i < bufs.size(); ++i)
    EXPECT_TRUE(std::equal(bufs[i].begin(), bufs[i].end(), data.begin() + i * 65536));
  EXPECT_EQ(nbd_shutdown(h, 0), 0);
}

TEST(Tls, RequiredTlsRefusesPlainClients) {
  TempDir keys;
  TestServer server(tls_settings(TlsSettings::Mode::require, write_psk_file(keys)));
  server.add(make_info("disk", 1 << 20));
  server.start();
  NbdHandle plain;
  EXPECT_EQ(nbd_connect_unix(plain, server.socket().c_str()), -1);
  // Byte level: options other than STARTTLS/ABORT get ERR_TLS_REQD, EXPORT_NAME disconnects.
  RawClient c(server.socket());
  ASSERT_TRUE(c.greeting());
  ASSERT_TRUE(c.send_client_flags(kClientFlagFixedNewstyle | kClientFlagNoZeroes));
  ASSERT_TRUE(c.send_option(kOptList));
  auto r = c.read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrTlsReqd);
  ASSERT_TRUE(c.send_option(kOptInfo, info_payload("disk")));
  r = c.read_option_reply();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->type, kRepErrTlsReqd);
  ASSERT_TRUE(c.send_option(kOptExportName, bytes("disk")));
  EXPECT_TRUE(c.closed_by_server());
}

TEST(Tls, OptionalTlsServesBothKinds) {
  TempDir keys;
  TestServer server(tls_settings(TlsSettings::Mode::on, write_psk_file(keys)));
  server.add(make_info("disk", 1 << 20));
  server.start();
  NbdHandle plain;
  ASSERT_EQ(nbd_connect_unix(plain, server.socket().c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_tls_negotiated(plain), 0);
  NbdHandle secure;
  psk_client(secure, keys.file("keys.psk"));
  ASSERT_EQ(nbd_connect_unix(secure, server.socket().c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_tls_negotiated(secure), 1);
  std::vector<std::byte> buf(4096);
  EXPECT_EQ(nbd_pread(secure, buf.data(), buf.size(), 0, 0), 0) << nbd_error_text();
}

TEST(Tls, WrongKeyFailsTheHandshakeOnly) {
  TempDir keys, other;
  TestServer server(tls_settings(TlsSettings::Mode::require, write_psk_file(keys)));
  server.add(make_info("disk", 1 << 20));
  server.start();
  NbdHandle bad;
  psk_client(bad, write_psk_file(other, std::string(64, 'f')));
  EXPECT_EQ(nbd_connect_unix(bad, server.socket().c_str()), -1);
  NbdHandle good;
  psk_client(good, keys.file("keys.psk"));
  EXPECT_EQ(nbd_connect_unix(good, server.socket().c_str()), 0) << nbd_error_text();
  EXPECT_TRUE(eventually([&] { return server.server().connection_count() == 1; }));
}

TEST(Tls, SettingsErrorsNameTheFile) {
  TempDir dir;
  std::string error = start_error(tls_settings(TlsSettings::Mode::require, dir.file("missing")));
  EXPECT_NE(error.find("cannot be opened"), std::string::npos) << error;
  std::ofstream(dir.file("bad.psk")) << "alice:xyz\n";
  error = start_error(tls_settings(TlsSettings::Mode::require, dir.file("bad.psk")));
  EXPECT_NE(error.find("line 1"), std::string::npos) << error;
  error = start_error(tls_settings(TlsSettings::Mode::require, "", dir.path()));
  EXPECT_NE(error.find("server-cert.pem does not exist"), std::string::npos) << error;
  error = start_error(tls_settings(TlsSettings::Mode::on, ""));
  EXPECT_NE(error.find("neither"), std::string::npos) << error;
}

// x509 with a throwaway CA. Skipped when certtool is not installed.
class TlsX509 : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v certtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "no certtool";
    server_dir_ = dir_.file("server");
    client_dir_ = dir_.file("client");
    std::string script =
        "set -e; cd " + dir_.path() + "; mkdir -p server client\n" +
        "gen() { certtool --generate-privkey --key-type=ecdsa --outfile \"$1\" 2>/dev/null; }\n"
        "printf 'cn = hydrate test CA\\nca\\ncert_signing_key\\nexpiration_days = 2\\n' > ca.info\n"
        "gen ca-key.pem\n"
        "certtool --generate-self-signed --load-privkey ca-key.pem --template ca.info "
        "--outfile ca-cert.pem >/dev/null 2>&1\n"
        "printf 'cn = localhost\\ndns_name = localhost\\ntls_www_server\\nencryption_key\\n"
        "signing_key\\nexpiration_days = 2\\n' > server.info\n"
        "gen server/server-key.pem\n"
        "certtool --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey "
        "ca-key.pem --load-privkey server/server-key.pem --template server.info "
        "--outfile server/server-cert.pem >/dev/null 2>&1\n"
        "printf 'cn = client\\ntls_www_client\\nencryption_key\\nsigning_key\\n"
        "expiration_days = 2\\n' > client.info\n"
        "gen client/client-key.pem\n"
        "certtool --generate-certificate --load-ca-certificate ca-cert.pem --load-ca-privkey "
        "ca-key.pem --load-privkey client/client-key.pem --template client.info "
        "--outfile client/client-cert.pem >/dev/null 2>&1\n"
        "cp ca-cert.pem server/; cp ca-cert.pem client/\n"
        "mkdir rogue; gen rogue/ca-key.pem\n"
        "certtool --generate-self-signed --load-privkey rogue/ca-key.pem --template ca.info "
        "--outfile rogue/ca-cert.pem >/dev/null 2>&1\n";
    ASSERT_EQ(std::system(("bash -c '" + escape(script) + "'").c_str()), 0) << script;
  }
  static std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out;
  }
  TempDir dir_;
  std::string server_dir_, client_dir_;
};

TEST_F(TlsX509, ServerCertificateVerifiedByTheClient) {
  // Over TCP: libnbd checks the certificate against the URI's host name only for TCP.
  ServerSettings s = tls_settings(TlsSettings::Mode::require, "", server_dir_);
  s.listen = {"tcp://127.0.0.1:0"};
  TestServer server(s);
  server.add(make_info("disk", 1 << 20));
  server.start();
  std::string address = server.server().bound_addresses().at(0);
  std::string uri = "nbds://localhost:" + address.substr(address.rfind(':') + 1) + "/disk";
  NbdHandle h;
  nbd_set_tls_certificates(h, client_dir_.c_str());
  ASSERT_EQ(nbd_connect_uri(h, uri.c_str()), 0) << nbd_error_text();
  EXPECT_EQ(nbd_get_tls_negotiated(h), 1);
  auto data = pattern(100000, 3);
  ASSERT_EQ(nbd_pwrite(h, data.data(), data.size(), 0, 0), 0) << nbd_error_text();
  std::vector<std::byte> back(data.size());
  ASSERT_EQ(nbd_pread(h, back.data(), back.size(), 0, 0), 0) << nbd_error_text();
  EXPECT_EQ(back, data);

  // A client trusting another CA rejects the server.
  NbdHandle wrong;
  nbd_set_tls_certificates(wrong, dir_.file("rogue").c_str());
  EXPECT_EQ(nbd_connect_uri(wrong, uri.c_str()), -1);
}

TEST_F(TlsX509, ClientCertificateRequiredWhenVerifyingPeers) {
  ServerSettings s = tls_settings(TlsSettings::Mode::require, "", server_dir_);
  s.tls.verify_peer = true;
  TestServer server(s);
  server.add(make_info("disk", 1 << 20));
  server.start();
  {
    NbdHandle h;  // presents client-cert.pem from its directory
    nbd_set_tls(h, LIBNBD_TLS_REQUIRE);
    nbd_set_tls_certificates(h, client_dir_.c_str());
    nbd_set_tls_verify_peer(h, false);
    ASSERT_EQ(nbd_connect_unix(h, server.socket().c_str()), 0) << nbd_error_text();
  }
  {
    TempDir anonymous;  // only the CA: no client certificate to show
    ASSERT_EQ(std::system(("cp " + client_dir_ + "/ca-cert.pem " + anonymous.path()).c_str()), 0);
    NbdHandle h;
    nbd_set_tls(h, LIBNBD_TLS_REQUIRE);
    nbd_set_tls_certificates(h, anonymous.path().c_str());
    nbd_set_tls_verify_peer(h, false);
    EXPECT_EQ(nbd_connect_unix(h, server.socket().c_str()), -1);
  }
}

}  // namespace
}  // namespace hydrate::nbd::testing
