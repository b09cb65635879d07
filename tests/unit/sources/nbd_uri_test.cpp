#include "engine/sources/nbd_uri.h"

#include <gtest/gtest.h>

namespace hydrate {
namespace {

NbdUri parse_ok(const std::string& text) {
  NbdUri uri;
  IoResult r = NbdUri::parse(text, uri);
  EXPECT_TRUE(r.ok()) << text << ": " << r.message;
  return uri;
}

TEST(NbdUri, TcpForms) {
  NbdUri a = parse_ok("nbd://backup.example.com/vm1");
  EXPECT_EQ(a.host, "backup.example.com");
  EXPECT_EQ(a.port, "");
  EXPECT_EQ(a.export_name, "vm1");
  EXPECT_FALSE(a.tls);
  EXPECT_FALSE(a.unix_socket);
  EXPECT_EQ(a.identity(), "nbd://backup.example.com/vm1");

  NbdUri b = parse_ok("nbds://alice@10.0.0.5:10900/disks/a?tls-psk-file=/etc/keys.psk");
  EXPECT_TRUE(b.tls);
  EXPECT_EQ(b.host, "10.0.0.5");
  EXPECT_EQ(b.port, "10900");
  EXPECT_EQ(b.export_name, "disks/a");
  // Credentials are no part of what the data is.
  EXPECT_EQ(b.identity(), "nbds://10.0.0.5:10900/disks/a");

  NbdUri c = parse_ok("nbd://[::1]:10809");
  EXPECT_EQ(c.host, "[::1]");
  EXPECT_EQ(c.port, "10809");
  EXPECT_EQ(c.identity(), "nbd://[::1]:10809/");
  EXPECT_EQ(c.text, "nbd://[::1]:10809");
}

TEST(NbdUri, UnixForms) {
  NbdUri a = parse_ok("nbd+unix:///exp?socket=/run/nbd%20x.sock");
  EXPECT_TRUE(a.unix_socket);
  EXPECT_EQ(a.socket_path, "/run/nbd x.sock");
  EXPECT_EQ(a.identity(), "nbd+unix:///exp?socket=/run/nbd x.sock");
  NbdUri b = parse_ok("nbds+unix://alice@/?socket=/tmp/s.sock&tls-psk-file=/tmp/k.psk");
  EXPECT_TRUE(b.tls);
  EXPECT_EQ(b.identity(), "nbds+unix:///?socket=/tmp/s.sock");
}

TEST(NbdUri, BadInputIsNamed) {
  struct Case {
    const char* uri;
    const char* says;
  };
  for (Case c :
       {Case{"http://example.com/disk.img", "unsupported source URI scheme 'http'"},
        Case{"nbd+vsock://1:10809", "unsupported source URI scheme 'nbd+vsock'"},
        Case{"backup.example.com/vm1", "expected SCHEME://"},
        Case{"nbd:///vm1", "missing host name"}, Case{"nbd://host:99999/vm1", "port '99999'"},
        Case{"nbd://host:ab/vm1", "port 'ab'"}, Case{"nbd://host:/vm1", "empty port"},
        Case{"nbd://[::1/vm1", "unterminated IPv6"},
        Case{"nbd+unix:///exp", "missing '?socket=PATH'"},
        Case{"nbd+unix://host/exp?socket=/s", "has no host"},
        Case{"nbd://host/exp?socket=/s", "needs a Unix-socket scheme"},
        Case{"nbd://host/exp?tls-psk-file=/k", "needs a TLS scheme"},
        Case{"nbd://host/a%zzb", "percent-encoding"}}) {
    NbdUri uri;
    IoResult r = NbdUri::parse(c.uri, uri);
    EXPECT_EQ(r.error, EINVAL) << c.uri;
    EXPECT_NE(r.message.find(c.says), std::string::npos) << c.uri << " -> " << r.message;
    EXPECT_NE(r.message.find(c.uri), std::string::npos) << c.uri << " -> " << r.message;
  }
}

}  // namespace
}  // namespace hydrate
