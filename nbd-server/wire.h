#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

// Big-endian integers in byte buffers: the only byte order NBD uses.
namespace hydrate::nbd::wire {

inline uint16_t load_u16(const std::byte* p) {
  return static_cast<uint16_t>((std::to_integer<uint16_t>(p[0]) << 8) |
                               std::to_integer<uint16_t>(p[1]));
}
inline uint32_t load_u32(const std::byte* p) {
  return (static_cast<uint32_t>(load_u16(p)) << 16) | load_u16(p + 2);
}
inline uint64_t load_u64(const std::byte* p) {
  return (static_cast<uint64_t>(load_u32(p)) << 32) | load_u32(p + 4);
}

inline void store_u16(std::byte* p, uint16_t v) {
  p[0] = static_cast<std::byte>(v >> 8);
  p[1] = static_cast<std::byte>(v);
}
inline void store_u32(std::byte* p, uint32_t v) {
  store_u16(p, static_cast<uint16_t>(v >> 16));
  store_u16(p + 2, static_cast<uint16_t>(v));
}
inline void store_u64(std::byte* p, uint64_t v) {
  store_u32(p, static_cast<uint32_t>(v >> 32));
  store_u32(p + 4, static_cast<uint32_t>(v));
}

// Appends big-endian fields to a growing buffer (option replies, chunk headers, extents).
class Writer {
 public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}

  void u8(uint8_t v) { out_.push_back(static_cast<std::byte>(v)); }
  void u16(uint16_t v) { store_u16(grow(2), v); }
  void u32(uint32_t v) { store_u32(grow(4), v); }
  void u64(uint64_t v) { store_u64(grow(8), v); }
  void bytes(std::span<const std::byte> b) {
    if (!b.empty()) std::memcpy(grow(b.size()), b.data(), b.size());
  }
  void string(std::string_view s) { bytes(std::as_bytes(std::span(s.data(), s.size()))); }
  void zeroes(size_t n) { std::memset(grow(n), 0, n); }
  size_t size() const { return out_.size(); }

 private:
  std::byte* grow(size_t n) {
    size_t at = out_.size();
    out_.resize(at + n);
    return out_.data() + at;
  }
  std::vector<std::byte>& out_;
};

// Reads big-endian fields from a bounded payload; running past the end sets a sticky failure
// instead of reading out of bounds, so parsers check once at the end.
class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }

  uint16_t u16() { return take(2) ? load_u16(in_.data() + pos_ - 2) : 0; }
  uint32_t u32() { return take(4) ? load_u32(in_.data() + pos_ - 4) : 0; }
  uint64_t u64() { return take(8) ? load_u64(in_.data() + pos_ - 8) : 0; }
  std::string_view string(size_t n) {
    if (!take(n)) return {};
    return {reinterpret_cast<const char*>(in_.data() + pos_ - n), n};
  }

 private:
  bool take(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace hydrate::nbd::wire
