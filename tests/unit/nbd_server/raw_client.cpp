#include "tests/unit/nbd_server/raw_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "nbd-server/protocol.h"
#include "nbd-server/wire.h"

namespace hydrate::nbd::testing {

using namespace proto;

RawClient::RawClient(const std::string& unix_path, int timeout_seconds) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket failed");
  timeval tv{timeout_seconds, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, unix_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("connect to " + unix_path + " failed: " + std::strerror(errno));
}

RawClient::~RawClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool RawClient::send(std::span<const std::byte> b) {
  size_t done = 0;
  while (done < b.size()) {
    ssize_t n = ::send(fd_, b.data() + done, b.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

std::optional<std::vector<std::byte>> RawClient::recv(size_t n) {
  std::vector<std::byte> out(n);
  size_t done = 0;
  while (done < n) {
    ssize_t got = ::recv(fd_, out.data() + done, n - done, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return std::nullopt;
    done += static_cast<size_t>(got);
  }
  return out;
}

bool RawClient::closed_by_server() {
  std::byte b;
  for (;;) {
    ssize_t got = ::recv(fd_, &b, 1, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got == 0) return true;
    if (got < 0) return errno == ECONNRESET || errno == EPIPE;
    return false;  // the server sent more data
  }
}

std::optional<uint16_t> RawClient::greeting() {
  auto g = recv(18);
  if (!g) return std::nullopt;
  if (wire::load_u64(g->data()) != kInitMagic || wire::load_u64(g->data() + 8) != kOptionMagic)
    return std::nullopt;
  return wire::load_u16(g->data() + 16);
}

bool RawClient::send_client_flags(uint32_t flags) {
  return send(be32(flags));
}

bool RawClient::send_option_header(uint32_t option, uint32_t length) {
  std::vector<std::byte> h(16);
  wire::store_u64(h.data(), kOptionMagic);
  wire::store_u32(h.data() + 8, option);
  wire::store_u32(h.data() + 12, length);
  return send(h);
}

bool RawClient::send_option(uint32_t option, std::span<const std::byte> data) {
  return send_option_header(option, static_cast<uint32_t>(data.size())) && send(data);
}

std::optional<RawClient::OptionReply> RawClient::read_option_reply() {
  auto h = recv(20);
  if (!h || wire::load_u64(h->data()) != kOptionReplyMagic) return std::nullopt;
  OptionReply r;
  r.option = wire::load_u32(h->data() + 8);
  r.type = wire::load_u32(h->data() + 12);
  uint32_t length = wire::load_u32(h->data() + 16);
  auto data = recv(length);
  if (!data) return std::nullopt;
  r.data = std::move(*data);
  return r;
}

bool RawClient::negotiate(const std::string& export_name, bool structured_replies, uint64_t* size,
                          uint16_t* transmission_flags) {
  if (!greeting() || !send_client_flags(kClientFlagFixedNewstyle | kClientFlagNoZeroes))
    return false;
  if (structured_replies) {
    if (!send_option(kOptStructuredReply)) return false;
    auto r = read_option_reply();
    if (!r || r->type != kRepAck) return false;
  }
  if (!send_option(kOptGo, info_payload(export_name))) return false;
  for (;;) {
    auto r = read_option_reply();
    if (!r) return false;
    if (r->type == kRepAck) return true;
    if (r->type != kRepInfo) return false;
    if (wire::load_u16(r->data.data()) == kInfoExport) {
      if (size) *size = wire::load_u64(r->data.data() + 2);
      if (transmission_flags) *transmission_flags = wire::load_u16(r->data.data() + 10);
    }
  }
}

bool RawClient::send_request(uint16_t flags, uint16_t type, uint64_t cookie, uint64_t offset,
                             uint32_t length, std::span<const std::byte> payload) {
  std::vector<std::byte> h(kRequestHeaderSize);
  wire::store_u32(h.data(), kRequestMagic);
  wire::store_u16(h.data() + 4, flags);
  wire::store_u16(h.data() + 6, type);
  wire::store_u64(h.data() + 8, cookie);
  wire::store_u64(h.data() + 16, offset);
  wire::store_u32(h.data() + 24, length);
  return send(h) && send(payload);
}

std::optional<RawClient::Reply> RawClient::read_reply() {
  auto magic = recv(4);
  if (!magic) return std::nullopt;
  Reply r;
  uint32_t m = wire::load_u32(magic->data());
  if (m == kSimpleReplyMagic) {
    auto rest = recv(12);
    if (!rest) return std::nullopt;
    r.error = wire::load_u32(rest->data());
    r.cookie = wire::load_u64(rest->data() + 4);
    return r;
  }
  if (m != kStructuredReplyMagic) return std::nullopt;
  auto rest = recv(16);
  if (!rest) return std::nullopt;
  r.structured = true;
  r.flags = wire::load_u16(rest->data());
  r.type = wire::load_u16(rest->data() + 2);
  r.cookie = wire::load_u64(rest->data() + 4);
  uint32_t length = wire::load_u32(rest->data() + 12);
  auto payload = recv(length);
  if (!payload) return std::nullopt;
  r.payload = std::move(*payload);
  if ((r.type & 0x8000) && r.payload.size() >= 4) r.error = wire::load_u32(r.payload.data());
  return r;
}

std::vector<std::byte> be32(uint32_t v) {
  std::vector<std::byte> b(4);
  wire::store_u32(b.data(), v);
  return b;
}

std::vector<std::byte> be16(uint16_t v) {
  std::vector<std::byte> b(2);
  wire::store_u16(b.data(), v);
  return b;
}

std::vector<std::byte> cat(std::initializer_list<std::vector<std::byte>> parts) {
  std::vector<std::byte> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

std::vector<std::byte> bytes(std::string_view s) {
  auto b = std::as_bytes(std::span(s.data(), s.size()));
  return {b.begin(), b.end()};
}

std::vector<std::byte> info_payload(const std::string& name, std::vector<uint16_t> items) {
  std::vector<std::byte> out = cat({be32(static_cast<uint32_t>(name.size())), bytes(name),
                                    be16(static_cast<uint16_t>(items.size()))});
  for (uint16_t i : items) {
    auto b = be16(i);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

}  // namespace hydrate::nbd::testing
