#include "tests/crash/workload.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <map>

#include "tests/crash/seeded_random.h"

namespace hydrate::crash {
namespace {

constexpr uint64_t kSector = 512;

// Picks the byte range of one request. Most requests land in a few hot regions so they collide
// with each other and with background hydration; the rest spread over the device.
struct RangePicker {
  SeededRandom& random;
  const CaseParams& params;
  uint64_t hot_first;
  uint64_t hot_count;

  uint64_t regions() const { return (params.size + params.region_size - 1) / params.region_size; }

  uint64_t pick_region() {
    if (random.chance(60)) return std::min(regions() - 1, hot_first + random.below(hot_count));
    return random.below(regions());
  }

  ByteRange pick() {
    const uint64_t rs = params.region_size, size = params.size;
    uint64_t offset = 0, length = 1;
    switch (random.below(7)) {
      case 0:  // whole regions
      case 1: {
        offset = pick_region() * rs;
        length = random.between(1, 3) * rs;
        break;
      }
      case 2: {  // inside one region, unaligned
        offset = pick_region() * rs + random.below(rs);
        length = random.between(1, rs - offset % rs);
        break;
      }
      case 3: {  // across a region boundary
        uint64_t r = std::max<uint64_t>(1, pick_region());
        offset = r * rs - std::min(r * rs, random.between(1, rs / 2));
        length = random.between(rs / 4, 2 * rs);
        break;
      }
      case 4: {  // sector-aligned
        offset = pick_region() * rs + random.below(rs / kSector) * kSector;
        length = random.between(1, 16) * kSector;
        break;
      }
      case 5: {  // the tail of the device (the last region may be short)
        offset = size - std::min(size, random.between(1, 2 * rs));
        length = size - offset;
        if (random.chance(50)) length = random.between(1, length);
        break;
      }
      default: {  // a few bytes
        offset = pick_region() * rs + random.below(rs);
        length = random.between(1, 16);
        break;
      }
    }
    offset = std::min(offset, size - 1);
    length = std::clamp<uint64_t>(length, 1, size - offset);
    return {offset, length};
  }
};

std::string range_text(uint64_t offset, uint64_t length) {
  return std::to_string(offset) + "+" + std::to_string(length);
}

char kind_letter(OpKind kind) {
  switch (kind) {
    case OpKind::read:
      return 'R';
    case OpKind::write:
      return 'W';
    case OpKind::zero:
      return 'Z';
    case OpKind::trim:
      return 'T';
    case OpKind::flush:
      return 'F';
    case OpKind::cache:
      return 'C';
  }
  return '?';
}

std::optional<OpKind> kind_of(char letter) {
  switch (letter) {
    case 'R':
      return OpKind::read;
    case 'W':
      return OpKind::write;
    case 'Z':
      return OpKind::zero;
    case 'T':
      return OpKind::trim;
    case 'F':
      return OpKind::flush;
    case 'C':
      return OpKind::cache;
  }
  return std::nullopt;
}

// Parses an unsigned number at the front of `text`, advancing it.
bool take_number(std::string_view& text, uint64_t& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return false;
  text.remove_prefix(static_cast<size_t>(end - text.data()));
  return true;
}

bool take_range(std::string_view& text, uint64_t& offset, uint64_t& length) {
  if (!take_number(text, offset) || text.empty() || text.front() != '+') return false;
  text.remove_prefix(1);
  return take_number(text, length);
}

std::optional<ClientOp> parse_op(std::string_view token) {
  ClientOp op;
  uint64_t connection = 0;
  if (!take_number(token, connection) || token.empty()) return std::nullopt;
  op.connection = static_cast<unsigned>(connection);
  auto kind = kind_of(token.front());
  if (!kind) return std::nullopt;
  op.kind = *kind;
  token.remove_prefix(1);
  if (op.ranged() && !take_range(token, op.offset, op.length)) return std::nullopt;
  while (!token.empty() && token.front() != '/') {
    switch (token.front()) {
      case 'f':
        op.fua = true;
        break;
      case 'n':
        op.no_hole = true;
        break;
      case 'z':
        op.fast_zero = true;
        break;
      default:
        return std::nullopt;
    }
    token.remove_prefix(1);
  }
  while (!token.empty()) {
    if (token.size() < 3 || token[0] != '/') return std::nullopt;
    char key = token[1];
    token.remove_prefix(2);
    uint64_t value = 0;
    if (!take_number(token, value)) return std::nullopt;
    if (key == 'p')
      op.pause = static_cast<unsigned>(value);
    else if (key == 'd')
      op.data_seed = value;
    else
      return std::nullopt;
  }
  return op;
}

}  // namespace

const char* to_string(OpKind kind) {
  switch (kind) {
    case OpKind::read:
      return "read";
    case OpKind::write:
      return "write";
    case OpKind::zero:
      return "zero";
    case OpKind::trim:
      return "trim";
    case OpKind::flush:
      return "flush";
    case OpKind::cache:
      return "cache";
  }
  return "?";
}

std::string describe(const ClientOp& op) {
  std::string s = "c" + std::to_string(op.connection) + " " + to_string(op.kind);
  if (op.ranged()) s += " " + range_text(op.offset, op.length);
  if (op.fua) s += " fua";
  if (op.no_hole) s += " no-hole";
  if (op.fast_zero) s += " fast";
  return s;
}

std::vector<std::byte> write_payload(uint64_t data_seed, uint64_t length) {
  std::vector<std::byte> data(length);
  SeededRandom random(data_seed);
  for (uint64_t i = 0; i < length; i += 8) {
    uint64_t word = random.next();
    for (uint64_t j = 0; j < 8 && i + j < length; ++j)
      data[i + j] = static_cast<std::byte>(word >> (8 * j));
  }
  return data;
}

Workload generate_workload(uint64_t seed, const GeneratorOptions& options) {
  SeededRandom random(mix_seed(seed, 0x776f726b));
  Workload w;
  CaseParams& p = w.params;
  p.seed = seed;
  p.region_size = 4096u << random.below(5);
  // Mostly 1-2 MiB (fast), sometimes up to max_size; sometimes not a multiple of the region
  // size, so the last region is short.
  uint64_t max_size =
      random.chance(70) ? std::min(options.max_size, std::max<uint64_t>(options.min_size, 2u << 20))
                        : options.max_size;
  p.size = random.between(options.min_size / 4096, max_size / 4096) * 4096;
  if (random.chance(25)) p.size -= random.between(1, 7) * kSector;
  p.fetch_window = p.region_size << random.below(3);
  p.copy_on_read = random.chance(70);
  p.discard_source = random.chance(35);
  p.destination_zeroed = random.chance(30);
  p.discard_passdown = random.chance(70);
  p.hydration = random.chance(85);
  p.batch_bytes = uint64_t{p.region_size} << random.below(4);
  p.connections = static_cast<unsigned>(random.between(1, std::max(1u, options.max_connections)));
  p.device_latency = static_cast<unsigned>(random.below(4));
  p.source_latency = static_cast<unsigned>(random.below(6));
  p.wait_for_completion = p.hydration && random.chance(25);
  p.skip_destination_flush = options.skip_destination_flush;
  if (options.avoid_known_bugs && p.destination_zeroed) p.copy_on_read = true;
  p.identity_length = random.chance(25) ? static_cast<uint32_t>(random.between(400, 1024)) : 12;
  const uint64_t regions = (p.size + p.region_size - 1) / p.region_size;
  for (uint64_t i = random.below(4); i > 0; --i) {
    uint64_t offset = random.chance(50) ? random.below(regions) * p.region_size
                                        : random.below(p.size / kSector) * kSector;
    uint64_t length =
        random.chance(50) ? random.between(1, 8) * p.region_size : random.between(1, 64) * kSector;
    if (offset >= p.size) continue;
    length = std::min(length, p.size - offset);
    // Keep holes disjoint and sorted (FakeSource's block_status expects that).
    bool overlaps = false;
    for (auto& h : p.holes) overlaps |= offset < h.end() && h.offset < offset + length;
    if (!overlaps) p.holes.push_back({offset, length});
  }
  std::sort(p.holes.begin(), p.holes.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });

  RangePicker picker{random, p, 0, 0};
  picker.hot_count = std::min<uint64_t>(regions, random.between(2, 8));
  picker.hot_first = random.below(regions - picker.hot_count + 1);
  for (unsigned c = 0; c < p.connections; ++c) {
    const uint64_t count = random.between(options.min_ops, options.max_ops);
    for (uint64_t i = 0; i < count; ++i) {
      ClientOp op;
      op.connection = c;
      const uint64_t roll = random.below(100);
      op.kind = roll < 38   ? OpKind::write
                : roll < 64 ? OpKind::read
                : roll < 74 ? OpKind::flush
                : roll < 83 ? OpKind::zero
                : roll < 91 ? OpKind::trim
                : roll < 95 ? OpKind::cache
                            : OpKind::write;
      if (op.ranged()) {
        ByteRange range = picker.pick();
        op.offset = range.offset;
        op.length = range.length;
      }
      switch (op.kind) {
        case OpKind::write:
          op.fua = random.chance(20);
          op.data_seed = random.next();
          break;
        case OpKind::zero:
          op.fua = random.chance(15);
          op.no_hole = random.chance(30);
          op.fast_zero = random.chance(10);
          break;
        case OpKind::trim:
          op.fua = random.chance(10);
          break;
        default:
          break;
      }
      op.pause = static_cast<unsigned>(random.below(4));
      w.ops.push_back(op);
    }
  }
  // Connections run concurrently; keep each one's requests together in the list, which is also
  // how the shrinker removes them.
  std::stable_sort(w.ops.begin(), w.ops.end(), [](const ClientOp& a, const ClientOp& b) {
    return a.connection < b.connection;
  });
  return w;
}

std::string to_text(const Workload& w) {
  const CaseParams& p = w.params;
  std::string s =
      "seed=" + std::to_string(p.seed) + " size=" + std::to_string(p.size) +
      " region=" + std::to_string(p.region_size) + " window=" + std::to_string(p.fetch_window) +
      " cor=" + std::to_string(p.copy_on_read) + " dsac=" + std::to_string(p.discard_source) +
      " dzero=" + std::to_string(p.destination_zeroed) +
      " passdown=" + std::to_string(p.discard_passdown) +
      " hydrate=" + std::to_string(p.hydration) + " batch=" + std::to_string(p.batch_bytes) +
      " conns=" + std::to_string(p.connections) + " dlat=" + std::to_string(p.device_latency) +
      " slat=" + std::to_string(p.source_latency) +
      " complete=" + std::to_string(p.wait_for_completion) +
      " skipflush=" + std::to_string(p.skip_destination_flush) +
      " ident=" + std::to_string(p.identity_length) + " holes=";
  if (p.holes.empty()) s += "-";
  for (size_t i = 0; i < p.holes.size(); ++i)
    s += (i ? ":" : "") + range_text(p.holes[i].offset, p.holes[i].length);
  s += " ops=";
  if (w.ops.empty()) s += "-";
  for (size_t i = 0; i < w.ops.size(); ++i) {
    const ClientOp& op = w.ops[i];
    if (i) s += ",";
    s += std::to_string(op.connection);
    s += kind_letter(op.kind);
    if (op.ranged()) s += range_text(op.offset, op.length);
    if (op.fua) s += "f";
    if (op.no_hole) s += "n";
    if (op.fast_zero) s += "z";
    s += "/p" + std::to_string(op.pause);
    if (op.kind == OpKind::write) s += "/d" + std::to_string(op.data_seed);
  }
  return s;
}

std::optional<Workload> parse_workload(std::string_view text, std::string& error) {
  Workload w;
  CaseParams& p = w.params;
  std::map<std::string, uint64_t*> numbers;
  uint64_t region = 0, window = 0, conns = 0, dlat = 0, slat = 0;
  uint64_t cor = 1, dsac = 0, dzero = 0, passdown = 1, hydrate = 1, complete = 0, skip = 0;
  uint64_t ident = 12;
  numbers["seed"] = &p.seed;
  numbers["size"] = &p.size;
  numbers["region"] = &region;
  numbers["window"] = &window;
  numbers["batch"] = &p.batch_bytes;
  numbers["conns"] = &conns;
  numbers["dlat"] = &dlat;
  numbers["slat"] = &slat;
  numbers["cor"] = &cor;
  numbers["dsac"] = &dsac;
  numbers["dzero"] = &dzero;
  numbers["passdown"] = &passdown;
  numbers["hydrate"] = &hydrate;
  numbers["complete"] = &complete;
  numbers["skipflush"] = &skip;
  numbers["ident"] = &ident;
  bool have_ops = false;
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view field = text.substr(0, space);
    text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
    if (field.empty()) continue;
    size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      error = "workload field '" + std::string(field) + "' has no '='";
      return std::nullopt;
    }
    std::string key(field.substr(0, eq));
    std::string_view value = field.substr(eq + 1);
    if (key == "holes") {
      while (value != "-" && !value.empty()) {
        ByteRange hole;
        if (!take_range(value, hole.offset, hole.length) || (!value.empty() && value[0] != ':')) {
          error = "workload field holes: expected OFFSET+LENGTH[:...], got '" + std::string(field) +
                  "'";
          return std::nullopt;
        }
        if (!value.empty()) value.remove_prefix(1);
        p.holes.push_back(hole);
      }
    } else if (key == "ops") {
      have_ops = true;
      while (value != "-" && !value.empty()) {
        size_t comma = value.find(',');
        std::string_view token = value.substr(0, comma);
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        auto op = parse_op(token);
        if (!op) {
          error = "workload op '" + std::string(token) +
                  "' is not CONN KIND [OFFSET+LENGTH] [f|n|z] /pPAUSE [/dSEED]";
          return std::nullopt;
        }
        w.ops.push_back(*op);
      }
    } else if (auto it = numbers.find(key); it != numbers.end()) {
      std::string_view digits = value;
      if (!take_number(digits, *it->second) || !digits.empty()) {
        error = "workload field " + key + ": '" + std::string(value) + "' is not a number";
        return std::nullopt;
      }
    } else {
      error = "unknown workload field '" + key + "'";
      return std::nullopt;
    }
  }
  if (!have_ops) {
    error = "workload has no ops= field";
    return std::nullopt;
  }
  p.region_size = static_cast<uint32_t>(region);
  p.fetch_window = static_cast<uint32_t>(window);
  p.connections = static_cast<unsigned>(conns);
  p.device_latency = static_cast<unsigned>(dlat);
  p.source_latency = static_cast<unsigned>(slat);
  p.copy_on_read = cor;
  p.discard_source = dsac;
  p.destination_zeroed = dzero;
  p.discard_passdown = passdown;
  p.hydration = hydrate;
  p.wait_for_completion = complete;
  p.skip_destination_flush = skip;
  p.identity_length = static_cast<uint32_t>(ident);
  if (ident < 1 || ident > 1024) {
    error = "workload ident=" + std::to_string(ident) + " is not a length in 1..1024";
    return std::nullopt;
  }
  if (region < 4096 || region > (64u << 10) || !std::has_single_bit(region)) {
    error = "workload region=" + std::to_string(region) + " is not a power of two in 4096..65536";
    return std::nullopt;
  }
  if (p.size == 0 || p.size % kSector != 0) {
    error = "workload size=" + std::to_string(p.size) + " is not a positive multiple of 512";
    return std::nullopt;
  }
  if (p.connections == 0) {
    error = "workload conns=0: at least one connection is needed";
    return std::nullopt;
  }
  for (const ByteRange& h : p.holes) {
    if (h.length == 0 || h.end() > p.size) {
      error = "workload hole " + range_text(h.offset, h.length) + " is empty or past size " +
              std::to_string(p.size);
      return std::nullopt;
    }
  }
  for (const ClientOp& op : w.ops) {
    if (op.connection >= p.connections) {
      error = "workload op '" + describe(op) + "' uses connection " +
              std::to_string(op.connection) + " of " + std::to_string(p.connections);
      return std::nullopt;
    }
    if (op.ranged() && (op.length == 0 || op.offset + op.length > p.size)) {
      error = "workload op '" + describe(op) + "' is empty or past size " + std::to_string(p.size);
      return std::nullopt;
    }
  }
  return w;
}

}  // namespace hydrate::crash
