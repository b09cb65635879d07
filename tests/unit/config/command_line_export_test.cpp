#include "config/command_line_export.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace hydrate::config {
namespace {

TEST(ExportArgument, NamePathAndMode) {
  ExportConfig e = parse_export_argument("disk0=/var/lib/disk0.img");
  EXPECT_EQ(e.name, "disk0");
  EXPECT_EQ(e.path, "/var/lib/disk0.img");
  EXPECT_FALSE(e.read_only);
  EXPECT_FALSE(e.clone.has_value());
  EXPECT_TRUE(e.location.empty());

  e = parse_export_argument("snap=/dev/hydrate-snap0:ro");
  EXPECT_EQ(e.path, "/dev/hydrate-snap0");
  EXPECT_TRUE(e.read_only);
  e = parse_export_argument("x=/a:b.img:rw");
  EXPECT_EQ(e.path, "/a:b.img");
  EXPECT_FALSE(e.read_only);
  // Only the first '=' separates: paths may contain more.
  e = parse_export_argument("x=/data/a=b.img");
  EXPECT_EQ(e.path, "/data/a=b.img");
}

TEST(ExportArgument, RelativePathsBecomeAbsolute) {
  ExportConfig e = parse_export_argument("d=images/../disk.img");
  EXPECT_EQ(e.path, (std::filesystem::current_path() / "disk.img").string());
}

TEST(ExportArgument, MalformedArgumentsNameTheArgument) {
  for (const char* bad : {"disk0", "=/a.img", "disk0=", "disk0=:ro"}) {
    try {
      parse_export_argument(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const ConfigError& e) {
      std::string m = e.what();
      EXPECT_NE(m.find(std::string("--export '") + bad + "'"), std::string::npos) << m;
      EXPECT_NE(m.find("expected NAME=PATH"), std::string::npos) << m;
    }
  }
}

TEST(ExportArgument, DuplicatesWithTheFileAreCaught) {
  ServerConfig c = parse_server_config("exports: [ { name: a, path: /a } ]\n", "f.yaml", "/");
  c.exports.push_back(parse_export_argument("a=/other"));
  try {
    validate_exports(c);
    ADD_FAILURE() << "duplicate accepted";
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("command line: export name 'a' is used twice (first at f.yaml:1:12)"),
              std::string::npos)
        << m;
  }
}

}  // namespace
}  // namespace hydrate::config
