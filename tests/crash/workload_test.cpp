// Workload generation, its text form (what reproduction commands carry), cut points, and the
// determinism the campaign's "a seed reproduces a case" rests on.
#include "tests/crash/workload.h"

#include <gtest/gtest.h>

#include <set>

#include "engine/log.h"
#include "tests/crash/cut_points.h"
#include "tests/crash/workload_runner.h"

namespace hydrate::crash {
namespace {

struct QuietLogs {
  QuietLogs() : saved(log::level()) { log::set_level(log::Level::error); }
  ~QuietLogs() { log::set_level(saved); }
  log::Level saved;
};

TEST(CrashWorkload, GenerationIsDeterministicAndVaried) {
  GeneratorOptions options;
  EXPECT_EQ(to_text(generate_workload(11, options)), to_text(generate_workload(11, options)));
  std::set<uint32_t> regions;
  std::set<unsigned> connections;
  bool cor_on = false, cor_off = false, discard = false, holes = false, unaligned_size = false;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Workload w = generate_workload(seed, options);
    const CaseParams& p = w.params;
    regions.insert(p.region_size);
    connections.insert(p.connections);
    (p.copy_on_read ? cor_on : cor_off) = true;
    discard |= p.discard_source;
    holes |= !p.holes.empty();
    unaligned_size |= p.size % p.region_size != 0;
    ASSERT_GE(p.size, options.min_size - 4096);
    ASSERT_LE(p.size, options.max_size);
    for (const ClientOp& op : w.ops) {
      ASSERT_LT(op.connection, p.connections);
      if (op.ranged()) {
        ASSERT_GT(op.length, 0u) << describe(op);
        ASSERT_LE(op.offset + op.length, p.size) << describe(op);
      }
    }
  }
  EXPECT_EQ(regions.size(), 5u) << "4, 8, 16, 32 and 64 KiB regions";
  EXPECT_GE(connections.size(), 3u);
  EXPECT_TRUE(cor_on && cor_off && discard && holes && unaligned_size);
}

TEST(CrashWorkload, TextRoundTrips) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Workload w = generate_workload(seed, GeneratorOptions{});
    std::string error;
    auto parsed = parse_workload(to_text(w), error);
    ASSERT_TRUE(parsed) << error;
    EXPECT_EQ(to_text(*parsed), to_text(w));
  }
}

TEST(CrashWorkload, BadTextIsRefusedNamingWhatIsWrong) {
  const std::string good = to_text(generate_workload(3, GeneratorOptions{}));
  std::string error;
  EXPECT_FALSE(parse_workload("seed=1 size=4096 region=4096 conns=1", error));
  EXPECT_NE(error.find("ops="), std::string::npos) << error;
  EXPECT_FALSE(parse_workload(good + " color=blue", error));
  EXPECT_NE(error.find("color"), std::string::npos) << error;
  EXPECT_FALSE(parse_workload("size=1048576 region=3000 conns=1 ops=-", error));
  EXPECT_NE(error.find("region=3000"), std::string::npos) << error;
  EXPECT_FALSE(parse_workload("size=1048576 region=4096 conns=1 ops=0W1048570+100/p0/d1", error));
  EXPECT_NE(error.find("past size"), std::string::npos) << error;
  EXPECT_FALSE(parse_workload("size=1048576 region=4096 conns=1 ops=0Q0+1/p0", error));
  EXPECT_NE(error.find("0Q0+1/p0"), std::string::npos) << error;
  EXPECT_FALSE(parse_workload("size=1048576 region=4096 conns=1 ops=1R0+1/p0", error));
  EXPECT_NE(error.find("connection 1"), std::string::npos) << error;
  EXPECT_FALSE(parse_workload("size=1048576 region=4096 conns=x ops=-", error));
  EXPECT_NE(error.find("conns"), std::string::npos) << error;
}

TEST(CrashWorkload, CutTextRoundTripsAndBadOnesAreRefused) {
  std::string error;
  CutCase cut{123, LossPolicy::none(), LossPolicy::random_from(77), "x"};
  auto parsed = parse_cut(to_text(cut), error);
  ASSERT_TRUE(parsed) << error;
  EXPECT_EQ(to_text(*parsed), "cut=123 dpol=keep-none mpol=random:77");
  EXPECT_FALSE(parse_cut("dpol=keep-all", error));
  EXPECT_NE(error.find("cut=SEQ"), std::string::npos) << error;
  EXPECT_FALSE(parse_cut("cut=5 dpol=sometimes", error));
  EXPECT_NE(error.find("sometimes"), std::string::npos) << error;
}

// A run is a pure function of its workload: the journal (every device, client and source event
// in order) is the same twice, so a seed or a printed trace reproduces a failure exactly.
TEST(CrashWorkload, RunsAreDeterministic) {
  QuietLogs quiet;
  for (uint64_t seed : {5, 6, 7}) {
    Workload w = generate_workload(seed, GeneratorOptions{});
    RunRecord a = run_workload(w);
    RunRecord b = run_workload(w);
    ASSERT_TRUE(a.problems.empty()) << a.problems.front();
    auto ea = a.journal->events(), eb = b.journal->events();
    ASSERT_EQ(ea.size(), eb.size()) << "seed " << seed;
    for (size_t i = 0; i < ea.size(); ++i)
      ASSERT_EQ(describe(ea[i]), describe(eb[i])) << "seed " << seed;
    EXPECT_EQ(a.destination->visible(), b.destination->visible());
  }
}

// The commit protocol steps are found from the device events: each metadata operation and each
// destination flush gives a cut before and after it.
TEST(CrashWorkload, CommitProtocolCutsComeFromDeviceEvents) {
  std::vector<Event> events;
  auto add = [&](Actor actor, Action action, Phase phase) {
    Event e;
    e.seq = events.size();
    e.actor = actor;
    e.action = action;
    e.phase = phase;
    events.push_back(e);
  };
  add(Actor::destination, Action::write, Phase::issue);     // 0
  add(Actor::destination, Action::write, Phase::complete);  // 1
  add(Actor::destination, Action::flush, Phase::issue);     // 2
  add(Actor::destination, Action::flush, Phase::complete);  // 3
  add(Actor::metadata, Action::write, Phase::issue);        // 4
  add(Actor::metadata, Action::write, Phase::complete);     // 5
  add(Actor::client, Action::flush, Phase::complete);       // 6
  auto cuts = commit_protocol_cuts(events, 7);
  std::vector<std::pair<uint64_t, std::string>> got;
  for (auto& c : cuts) got.push_back({c.seq, c.label});
  std::vector<std::pair<uint64_t, std::string>> want = {{2, "before destination flush issued"},
                                                        {3, "after destination flush issued"},
                                                        {4, "after destination flush completed"},
                                                        {5, "after metadata write issued"},
                                                        {6, "after metadata write completed"}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(commit_protocol_cuts(events, 4).size(), 3u);
}

}  // namespace
}  // namespace hydrate::crash
