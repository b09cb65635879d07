#pragma once

#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

namespace hydrate::crash {

// Who did something the crash campaign cares about.
enum class Actor : uint8_t { destination, metadata, client, source };

enum class Action : uint8_t {
  write,
  write_zeroes,
  discard,
  flush,
  read,
  zero,   // client WRITE_ZEROES
  trim,   // client TRIM
  cache,  // client CACHE
  source_discard,
  open,  // CloneVolume::open returned (the clone's metadata exists and is durable)
  close,
};

enum class Phase : uint8_t { issue, complete };

inline constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

// One moment in the global order of a campaign run. A power cut "at seq k" means: every event
// with seq < k happened, nothing at or after k did.
struct Event {
  uint64_t seq = 0;
  Actor actor = Actor::client;
  unsigned lane = 0;  // client connection number
  Action action = Action::write;
  Phase phase = Phase::issue;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool fua = false;
  bool ok = true;  // for completions
};

// The single clock every simulated device, the source and the client workload stamp their
// operations with, so "before the cut" has one meaning across devices (a power cut hits the
// destination and the metadata at the same instant). Thread-safe.
class EventJournal {
 public:
  // Stamps `event` with the next sequence number, stores it and returns the number.
  uint64_t record(Event event);
  // Events with seq < now() have happened.
  uint64_t now() const;
  std::vector<Event> events() const;
  Event at(uint64_t seq) const;

 private:
  mutable std::mutex mutex_;
  std::vector<Event> events_;
};

const char* to_string(Actor actor);
const char* to_string(Action action);
// "destination write 65536+16384 complete" — for traces.
std::string describe(const Event& event);

}  // namespace hydrate::crash
