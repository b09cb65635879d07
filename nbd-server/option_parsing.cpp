#include "nbd-server/option_parsing.h"

#include <algorithm>

#include "nbd-server/protocol.h"
#include "nbd-server/wire.h"

namespace hydrate::nbd {

std::optional<std::string> check_protocol_string(std::string_view what, std::string_view s) {
  if (s.size() > proto::kMaxString)
    return std::string(what) + " is " + std::to_string(s.size()) + " bytes long; the limit is 4096";
  if (s.find('\0') != std::string_view::npos) return std::string(what) + " contains a NUL byte";
  return std::nullopt;
}

namespace {

// INFO/GO and the meta context options all open with the same length-prefixed export name.
// `in` is fresh, so what remains is the whole payload (its size goes into the message).
std::optional<std::string> read_export_name(wire::Reader& in, std::string& name) {
  const size_t payload_size = in.remaining();
  uint32_t name_length = in.u32();
  if (!in.ok())
    return "payload of " + std::to_string(payload_size) +
           " bytes is too short for the export name length";
  if (name_length > in.remaining())
    return "export name length " + std::to_string(name_length) + " runs past the payload (" +
           std::to_string(in.remaining()) + " bytes left)";
  name = std::string(in.string(name_length));
  return check_protocol_string("export name", name);
}

}  // namespace

std::optional<std::string> parse_info_request(std::span<const std::byte> payload,
                                              InfoRequest& out) {
  wire::Reader in(payload);
  if (auto bad = read_export_name(in, out.export_name)) return bad;
  uint16_t count = in.u16();
  if (!in.ok()) return std::string("payload ends before the count of information requests");
  if (in.remaining() != size_t{count} * 2)
    return std::to_string(count) + " information requests need " + std::to_string(count * 2) +
           " bytes, the payload has " + std::to_string(in.remaining());
  out.items.clear();
  out.items.reserve(count);
  for (uint16_t i = 0; i < count; ++i) out.items.push_back(in.u16());
  return std::nullopt;
}

std::optional<std::string> parse_meta_context_request(std::span<const std::byte> payload,
                                                      MetaContextRequest& out) {
  wire::Reader in(payload);
  if (auto bad = read_export_name(in, out.export_name)) return bad;
  uint32_t count = in.u32();
  if (!in.ok()) return std::string("payload ends before the number of queries");
  // Every query takes at least its 4-byte length, so a count the payload cannot hold is
  // rejected before anything is reserved for it.
  if (count > in.remaining() / 4)
    return std::to_string(count) + " queries cannot fit in the " + std::to_string(in.remaining()) +
           " bytes left";
  out.queries.clear();
  out.queries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t length = in.u32();
    if (!in.ok() || length > in.remaining())
      return "query " + std::to_string(i + 1) + " of " + std::to_string(count) +
             " runs past the payload";
    out.queries.emplace_back(in.string(length));
    if (auto bad = check_protocol_string("query " + std::to_string(i + 1), out.queries.back()))
      return bad;
  }
  if (in.remaining() != 0) return std::to_string(in.remaining()) + " bytes follow the last query";
  return std::nullopt;
}

std::vector<size_t> match_meta_contexts(const std::vector<std::string>& available,
                                        const std::vector<std::string>& queries, bool listing,
                                        std::string* error) {
  std::vector<size_t> selected;
  auto add = [&](size_t i) {
    if (std::find(selected.begin(), selected.end(), i) == selected.end()) selected.push_back(i);
  };
  if (queries.empty()) {
    if (listing)
      for (size_t i = 0; i < available.size(); ++i) add(i);
    return selected;
  }
  for (const std::string& query : queries) {
    if (query.find(':') == std::string::npos) {
      if (error) *error = "query \"" + query + "\" has no namespace (expected \"namespace:name\")";
      return {};
    }
    bool prefix = listing && query.back() == ':';
    for (size_t i = 0; i < available.size(); ++i) {
      const std::string& name = available[i];
      if (prefix ? name.starts_with(query) : name == query) add(i);
    }
  }
  return selected;
}

}  // namespace hydrate::nbd
