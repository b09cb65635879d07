// The control socket's request handling (the CLI's `hydrate status` / `hydrate ctl` talk to it).
#include <nlohmann/json.hpp>

#include "engine/control/control_server.h"
#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

using nlohmann::json;

class Control : public CloneFixture {
 protected:
  void SetUp() override {
    open_ok();
    registry = std::make_shared<ControlRegistry>();
    registry->add_clone(volume);
  }
  ~Control() override { registry.reset(); }
  json ask(const std::string& line) { return json::parse(ControlServer::handle(*registry, line)); }

  std::shared_ptr<ControlRegistry> registry;
};

TEST_F(Control, StatusListsTheCloneWithItsProgress) {
  read(0, 4096);
  settle();
  json r = ask(R"({"command":"status"})");
  ASSERT_TRUE(r["ok"]);
  ASSERT_EQ(r["exports"].size(), 1u);
  json c = r["exports"][0];
  EXPECT_EQ(c["name"], "c");
  EXPECT_EQ(c["type"], "clone");
  EXPECT_EQ(c["state"], "paused");  // hydration disabled in the fixture
  EXPECT_EQ(c["hydrated_regions"], 2);
  EXPECT_EQ(c["regions"], 64);
  EXPECT_EQ(c["size"], kSize);
}

TEST_F(Control, PauseResumeAndSetChangeTheClone) {
  volume->resume();
  EXPECT_EQ(ask(R"({"command":"pause","export":"c"})")["export"]["state"], "paused");
  EXPECT_EQ(ask(R"({"command":"resume","export":"c"})")["export"]["state"], "hydrating");
  json r = ask(R"({"command":"set","export":"c","settings":{"rate":1048576,"batch":131072}})");
  ASSERT_TRUE(r["ok"]) << r.dump();
  EXPECT_EQ(volume->hydration().rate_bytes_per_second, 1048576u);
  EXPECT_EQ(volume->hydration().batch_bytes, 131072u);
}

TEST_F(Control, BadRequestsNameWhatWasWrong) {
  auto err = [&](const std::string& line) {
    json r = ask(line);
    EXPECT_FALSE(r["ok"]) << line;
    return r["error"].get<std::string>();
  };
  EXPECT_NE(err("not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(err(R"({"command":"explode"})").find("unknown command 'explode'"), std::string::npos);
  EXPECT_NE(err(R"({"command":"status","export":"nope"})").find("no export named 'nope'"),
            std::string::npos);
  EXPECT_NE(err(R"({"command":"pause"})").find("needs an \"export\""), std::string::npos);
  EXPECT_NE(err(R"({"command":"set","export":"c","settings":{"speed":1}})").find("unknown setting 'speed'"),
            std::string::npos);
  EXPECT_NE(err(R"({"command":"set","export":"c","settings":{"batch":1}})").find("'batch' = 1 is out of range"),
            std::string::npos);
  EXPECT_NE(err(R"({"command":"set","export":"c","settings":{"rate":-5}})").find("byte count"),
            std::string::npos);
  EXPECT_NE(err(R"({"command":"set","export":"c","settings":{"batch":8388608,"max_inflight":4194304}})")
                .find("must be at least batch"),
            std::string::npos);
  // Nothing changed.
  EXPECT_EQ(volume->hydration().batch_bytes, settings.hydration.batch_bytes);
}

}  // namespace
}  // namespace hydrate::test
