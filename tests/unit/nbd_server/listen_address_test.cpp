#include "nbd-server/listen_address.h"

#include <gtest/gtest.h>

#include <string>

namespace hydrate::nbd {
namespace {

ListenAddress parsed(std::string_view uri) {
  ParsedListenAddress p = parse_listen_address(uri);
  EXPECT_TRUE(p) << uri << ": " << p.problem;
  EXPECT_EQ(p.problem, "") << uri;
  return p.address.value_or(ListenAddress{});
}

// What is wrong with `uri`; fails the test if it parses.
std::string problem_of(std::string_view uri) {
  ParsedListenAddress p = parse_listen_address(uri);
  EXPECT_FALSE(p) << "accepted " << uri;
  EXPECT_NE(p.problem, "") << uri;
  return p.problem;
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(ListenAddress, ParsesTheSupportedForms) {
  ListenAddress a = parsed("tcp://127.0.0.1:10810");
  EXPECT_EQ(a.kind, ListenAddress::Kind::tcp);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 10810);
  EXPECT_EQ(parsed("tcp://localhost").port, kDefaultNbdPort);
  a = parsed("tcp://[::1]:0");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 0);
  EXPECT_EQ(parsed("tcp://[fe80::1]").port, kDefaultNbdPort);
  EXPECT_EQ(parsed("tcp://*:99").host, "");
  EXPECT_EQ(parsed("tcp://:99").host, "");
  a = parsed("unix:/run/x.sock");
  EXPECT_EQ(a.kind, ListenAddress::Kind::unix_socket);
  EXPECT_EQ(a.path, "/run/x.sock");
  EXPECT_EQ(parsed("unix:///run/y.sock").path, "/run/y.sock");
  EXPECT_EQ(parsed("unix:relative.sock").path, "relative.sock");
}

TEST(ListenAddress, OneTrailingSlashIsTolerated) {
  ListenAddress a = parsed("tcp://127.0.0.1:10809/");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 10809);
  EXPECT_EQ(parsed("tcp://[::1]/").host, "::1");
  EXPECT_EQ(parsed("tcp://localhost/").port, kDefaultNbdPort);
}

TEST(ListenAddress, BadAddressesNameTheProblemWithoutThrowing) {
  EXPECT_HAS(problem_of("http://x"), "unknown listen address form; expected tcp://");
  EXPECT_HAS(problem_of(""), "unknown listen address form");
  EXPECT_HAS(problem_of("/run/x.sock"), "unknown listen address form");
  EXPECT_HAS(problem_of("tcp://host:99999"), "port 99999 is above 65535");
  EXPECT_HAS(problem_of("tcp://host:12ab"), "not a number");
  EXPECT_HAS(problem_of("tcp://::1:80"), "an IPv6 address needs brackets");
  EXPECT_HAS(problem_of("tcp://[::1"), "closing");
  EXPECT_HAS(problem_of("tcp://[]:80"), "between brackets is empty");
  EXPECT_HAS(problem_of("tcp://[::1]x"), "expected ':PORT' after ']'");
  EXPECT_HAS(problem_of("tcp://"), "host is empty");
  EXPECT_HAS(problem_of("tcp:///"), "host is empty");
  EXPECT_HAS(problem_of("tcp://h:"), "the port after ':' is empty");
  EXPECT_HAS(problem_of("tcp://h:1/path"),
             "\"/path\" after the address; a listen address has no path");
  EXPECT_HAS(problem_of("tcp://h/path"), "a listen address has no path");
  EXPECT_HAS(problem_of("tcp://h:1//"), "has no path");
  EXPECT_HAS(problem_of("unix:"), "path is empty");
  EXPECT_HAS(problem_of("unix://"), "path is empty");
  EXPECT_HAS(problem_of("unix:/" + std::string(200, 'a')), "longer");
}

}  // namespace
}  // namespace hydrate::nbd
