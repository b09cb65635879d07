#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/extent.h"
#include "engine/sources/request_group.h"

namespace hydrate {

// hydrate's own record of one NBD command it owes a caller. It stays alive, and keeps its
// caller waiting, until the command succeeded or its deadline passed: when a connection dies
// the record is issued again on another one, so nothing depends on what libnbd had queued.
struct SourceRequest {
  using Clock = std::chrono::steady_clock;
  enum class Kind { read, block_status, trim };

  Kind kind = Kind::read;
  // Background hydration: waits in the router behind every other request (DESIGN §5).
  bool background = false;
  uint64_t offset = 0;
  uint64_t length = 0;
  std::byte* data = nullptr;      // read: the caller's buffer, `length` bytes
  ExtentList* extents = nullptr;  // block_status: the caller's list, appended on success
  ExtentList received;            // block_status: what the current attempt got so far
  Clock::time_point deadline;     // fail with EIO when not done by then
  Clock::time_point not_before;   // after a server error: retry no earlier than this
  unsigned server_errors = 0;     // attempts the server answered with an error
  std::string last_error;
  std::shared_ptr<RequestGroup> group;

  // "read at offset 4096 (65536 bytes)"
  std::string describe() const {
    const char* what = kind == Kind::read           ? "read"
                       : kind == Kind::block_status ? "block status"
                                                    : "trim";
    return std::string(what) + " at offset " + std::to_string(offset) + " (" +
           std::to_string(length) + " bytes)";
  }
};

}  // namespace hydrate
