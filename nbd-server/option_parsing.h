#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

// Decoders for the option payloads that carry structure (NBD_OPT_INFO/GO, NBD_OPT_LIST/
// SET_META_CONTEXT). Each returns an error message when the payload is malformed; the handshake
// answers that with NBD_REP_ERR_INVALID and keeps going.
namespace hydrate::nbd {

// NBD_OPT_INFO and NBD_OPT_GO: u32 name length, name, u16 count, count × u16 NBD_INFO_*.
struct InfoRequest {
  std::string export_name;
  std::vector<uint16_t> items;
};

// NBD_OPT_LIST_META_CONTEXT and NBD_OPT_SET_META_CONTEXT: u32 name length, name, u32 count,
// count × (u32 length, query).
struct MetaContextRequest {
  std::string export_name;
  std::vector<std::string> queries;
};

std::optional<std::string> parse_info_request(std::span<const std::byte> payload, InfoRequest& out);
std::optional<std::string> parse_meta_context_request(std::span<const std::byte> payload,
                                                      MetaContextRequest& out);

// Checks a string the protocol carries: at most 4096 bytes, no NUL. Returns what is wrong.
std::optional<std::string> check_protocol_string(std::string_view what, std::string_view s);

// Which of `available` (context names, e.g. "base:allocation") a list of queries selects, as
// indexes into `available`, without duplicates. Listing (NBD_OPT_LIST_META_CONTEXT) treats an
// empty query list as "all" and a query ending in ':' ("base:", "qemu:dirty-bitmap:") as a
// prefix; selecting (NBD_OPT_SET_META_CONTEXT) only takes exact names. Queries naming unknown
// namespaces select nothing, as the spec demands. A query without a namespace is malformed:
// the error comes back in `error`.
std::vector<size_t> match_meta_contexts(const std::vector<std::string>& available,
                                        const std::vector<std::string>& queries, bool listing,
                                        std::string* error);

}  // namespace hydrate::nbd
