#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace hydrate::nbd::testing {

// A byte-level NBD client over a Unix socket, for what libnbd refuses to send: bad magics,
// truncated or oversized options, unknown flags and commands, giant payloads. Every receive
// is bounded by a socket timeout so a test cannot hang.
class RawClient {
 public:
  explicit RawClient(const std::string& unix_path, int timeout_seconds = 20);
  ~RawClient();
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool send(std::span<const std::byte> bytes);
  // Exactly n bytes, or nullopt if the server closed the connection (or the timeout hit).
  std::optional<std::vector<std::byte>> recv(size_t n);
  // True when the server closed the connection (end of stream or reset) before sending
  // anything more.
  bool closed_by_server();

  // Handshake pieces. greeting() returns the handshake flags (nullopt if the magics are wrong
  // or the server closed).
  std::optional<uint16_t> greeting();
  bool send_client_flags(uint32_t flags);
  bool send_option(uint32_t option, std::span<const std::byte> data = {});
  bool send_option_header(uint32_t option, uint32_t length);
  struct OptionReply {
    uint32_t option = 0;
    uint32_t type = 0;
    std::vector<std::byte> data;
  };
  std::optional<OptionReply> read_option_reply();
  // Greeting, fixed newstyle + NO_ZEROES, optional STRUCTURED_REPLY, GO. True when the
  // server acknowledged GO.
  bool negotiate(const std::string& export_name, bool structured_replies, uint64_t* size = nullptr,
                 uint16_t* transmission_flags = nullptr);

  bool send_request(uint16_t flags, uint16_t type, uint64_t cookie, uint64_t offset,
                    uint32_t length, std::span<const std::byte> payload = {});
  struct Reply {
    bool structured = false;
    uint16_t flags = 0;  // chunk flags
    uint16_t type = 0;   // chunk type
    uint32_t error = 0;  // simple reply error, or the error of an ERROR chunk
    uint64_t cookie = 0;
    std::vector<std::byte> payload;  // chunk payload (not read data of simple replies)
  };
  // One simple reply header or one structured chunk.
  std::optional<Reply> read_reply();

  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

std::vector<std::byte> be32(uint32_t v);
std::vector<std::byte> be16(uint16_t v);
std::vector<std::byte> cat(std::initializer_list<std::vector<std::byte>> parts);
std::vector<std::byte> bytes(std::string_view s);
// An NBD_OPT_INFO / NBD_OPT_GO payload.
std::vector<std::byte> info_payload(const std::string& name, std::vector<uint16_t> items = {});

}  // namespace hydrate::nbd::testing
