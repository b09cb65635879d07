// Follow the reader (DESIGN §5): a client's miss sends the background copy to the regions
// right after it, ahead of the walk from the start of the map; a later miss elsewhere moves it
// there. Nothing is fetched twice.
#include <algorithm>

#include "tests/unit/clone/clone_fixture.h"

namespace hydrate::test {
namespace {

class Readahead : public CloneFixture {
 protected:
  Readahead() {
    // One region per batch, one batch in flight: the source's read log is the copy order.
    settings.hydration.batch_bytes = kRegion;
    settings.hydration.max_inflight_bytes = kRegion;
    settings.commit_interval = std::chrono::milliseconds(50);
  }
  void start_hydration() {
    HydrationSettings h = settings.hydration;
    h.enabled = true;
    volume->set_hydration(h);
    volume->resume();  // opened with hydration off: paused
    run_until([&] { return volume->completed().is_set(); });
    EXPECT_EQ(destination.contents(), source.data());
  }
  static size_t index_of(const std::vector<uint64_t>& v, uint64_t region) {
    return static_cast<size_t>(std::find(v.begin(), v.end(), region) - v.begin());
  }
};

// Fails without readahead: the walk would start at region 0.
TEST_F(Readahead, AClientMissIsFollowedByTheRegionsAfterItBeforeTheWalk) {
  open_ok();
  read(20 * kRegion, 4096);  // fetches the 128 KiB window: regions 20 and 21
  start_hydration();
  std::vector<uint64_t> order = read_regions();
  ASSERT_GE(order.size(), 4u);
  EXPECT_EQ(order[0], 20u) << "the client's miss";
  EXPECT_EQ(std::vector<uint64_t>(order.begin() + 1, order.begin() + 4),
            (std::vector<uint64_t>{22, 23, 24}))
      << "then what follows it";
  EXPECT_LT(index_of(order, 63), index_of(order, 0))
      << "readahead of 4 MiB covers the rest of this 4 MiB device before the walk";
  EXPECT_EQ(order.size(), kSize / kRegion - 1) << "nothing fetched twice (20-21 in one read)";
}

// The copy goes where the reader is now, not where it was.
TEST_F(Readahead, TheNewestMissLeads) {
  open_ok();
  read(8 * kRegion, 4096);   // regions 8-9: readahead from 10
  read(40 * kRegion, 4096);  // regions 40-41: readahead from 42, newer, goes first
  start_hydration();
  std::vector<uint64_t> order = read_regions();
  ASSERT_GE(order.size(), 3u);
  EXPECT_EQ(std::vector<uint64_t>(order.begin(), order.begin() + 3),
            (std::vector<uint64_t>{8, 40, 42}));
  EXPECT_LT(index_of(order, 63), index_of(order, 0)) << "the newest readahead before the walk";
}

}  // namespace
}  // namespace hydrate::test
