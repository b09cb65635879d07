#include <gtest/gtest.h>

#include "tests/unit/sources/source_test_support.h"

namespace hydrate::test {
namespace {

class NbdSourceTls : public SourceTest {};

// TLS with a pre-shared key over a Unix socket: libnbd does the TLS, hydrate passes the URI.
TEST_F(NbdSourceTls, PskOverUnixSocket) {
  const std::string keys = dir_.file("keys.psk");
  const std::string command =
      "/usr/bin/timeout 30 /usr/bin/psktool -u alice -p " + keys + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  NbdkitServer server(dir_.path() / "srv",
                      {"--tls=require", "--tls-psk=" + keys, "pattern", "size=16M"});

  const std::string uri =
      "nbds+unix://alice@/?socket=" + server.socket_path() + "&tls-psk-file=" + keys;
  auto source = make_nbd_source(uri);
  open_or_fail(*source);
  EXPECT_EQ(source->identity(), "nbds+unix:///?socket=" + server.socket_path());
  std::vector<std::byte> buffer(1 << 20);
  IoResult r = run(source->read(777, buffer));
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(pattern_mismatch(777, buffer), -1);
  run(source->close());

  // Without TLS the server refuses the export; open() says so instead of hanging.
  SourceOptions options = test_options();
  options.connect_timeout = std::chrono::milliseconds(500);
  auto plain = make_nbd_source("nbd+unix:///?socket=" + server.socket_path(), options);
  IoResult refused = run(plain->open());
  EXPECT_FALSE(refused.ok());
  EXPECT_NE(refused.message.find("nbd+unix:///?socket="), std::string::npos) << refused.message;
  run(plain->close());
}

}  // namespace
}  // namespace hydrate::test
