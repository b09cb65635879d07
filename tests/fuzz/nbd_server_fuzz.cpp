// libFuzzer target: arbitrary bytes as the client side of one NBD connection, through the
// real handshake, option parsing, request parsing and reply paths (no sockets: the bytes are
// fed by a MemoryTransport). Crashes, sanitizer reports, hangs and an export called with an
// unvalidated range (FuzzExport aborts) are findings.
#include <asio/io_context.hpp>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/log.h"
#include "nbd-server/connection.h"
#include "nbd-server/memory_transport.h"
#include "nbd-server/server_state.h"
#include "tests/fuzz/fuzz_export.h"

using namespace hydrate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool quiet = [] {
    log::set_level(log::Level::error);
    return true;
  }();
  (void)quiet;
  if (size == 0) return 0;

  // The first byte picks how the stream is sliced into reads (1 byte at a time … all at
  // once), so partial headers and payloads are exercised.
  static constexpr size_t kSlices[] = {1, 3, 7, 16, 28, 100, 4096, SIZE_MAX};
  size_t max_read = kSlices[data[0] % std::size(kSlices)];
  std::vector<std::byte> input(reinterpret_cast<const std::byte*>(data + 1),
                               reinterpret_cast<const std::byte*>(data + size));

  asio::io_context io;
  nbd::ServerSettings settings;
  settings.handshake_timeout = std::chrono::seconds(60);
  auto state = std::make_shared<nbd::ServerState>(settings);
  state->exports.add(std::make_shared<fuzz::FuzzExport>("disk", 64 * 1024, false, 1), true);
  state->exports.add(std::make_shared<fuzz::FuzzExport>("ro", 32 * 1024, true, 512), false);
  auto transport = std::make_unique<nbd::MemoryTransport>(io.get_executor(), std::move(input),
                                                          max_read, size_t{1} << 20);
  auto connection = std::make_shared<nbd::Connection>(state, std::move(transport), "fuzz");
  state->admit(connection);
  connection->start();
  connection.reset();
  io.run();
  if (state->connection_count() != 0) __builtin_trap();  // the connection never finished
  return 0;
}
