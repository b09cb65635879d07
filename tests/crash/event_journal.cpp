#include "tests/crash/event_journal.h"

namespace hydrate::crash {

uint64_t EventJournal::record(Event event) {
  std::lock_guard lock(mutex_);
  event.seq = events_.size();
  events_.push_back(event);
  return event.seq;
}

uint64_t EventJournal::now() const {
  std::lock_guard lock(mutex_);
  return events_.size();
}

std::vector<Event> EventJournal::events() const {
  std::lock_guard lock(mutex_);
  return events_;
}

Event EventJournal::at(uint64_t seq) const {
  std::lock_guard lock(mutex_);
  return events_.at(seq);
}

const char* to_string(Actor actor) {
  switch (actor) {
    case Actor::destination:
      return "destination";
    case Actor::metadata:
      return "metadata";
    case Actor::client:
      return "client";
    case Actor::source:
      return "source";
  }
  return "?";
}

const char* to_string(Action action) {
  switch (action) {
    case Action::write:
      return "write";
    case Action::write_zeroes:
      return "write_zeroes";
    case Action::discard:
      return "discard";
    case Action::flush:
      return "flush";
    case Action::read:
      return "read";
    case Action::zero:
      return "zero";
    case Action::trim:
      return "trim";
    case Action::cache:
      return "cache";
    case Action::source_discard:
      return "discard";
    case Action::open:
      return "open";
    case Action::close:
      return "close";
  }
  return "?";
}

std::string describe(const Event& e) {
  std::string s = "@" + std::to_string(e.seq) + " " + to_string(e.actor);
  if (e.actor == Actor::client) s += std::to_string(e.lane);
  s += " ";
  s += to_string(e.action);
  if (e.length > 0) s += " " + std::to_string(e.offset) + "+" + std::to_string(e.length);
  if (e.fua) s += " fua";
  s += e.phase == Phase::issue ? " issued" : " completed";
  if (e.phase == Phase::complete && !e.ok) s += " (failed)";
  return s;
}

}  // namespace hydrate::crash
