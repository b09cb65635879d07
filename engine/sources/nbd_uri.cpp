#include "engine/sources/nbd_uri.h"

#include <cerrno>
#include <charconv>
#include <cstdint>

namespace hydrate {
namespace {

IoResult bad_uri(std::string_view text, const std::string& why) {
  return IoResult::failure(EINVAL, "invalid source URI '" + std::string(text) + "': " + why);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_value(in[i + 1]);
    int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

}  // namespace

IoResult NbdUri::parse(std::string_view text, NbdUri& out) {
  NbdUri uri;
  uri.text = std::string(text);
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos)
    return bad_uri(text, "expected SCHEME://… (nbd://, nbds://, nbd+unix:// or nbds+unix://)");
  uri.scheme = std::string(text.substr(0, scheme_end));
  if (uri.scheme == "nbd" || uri.scheme == "nbds") {
    uri.unix_socket = false;
  } else if (uri.scheme == "nbd+unix" || uri.scheme == "nbds+unix") {
    uri.unix_socket = true;
  } else {
    return IoResult::failure(EINVAL,
                             "unsupported source URI scheme '" + uri.scheme + "' in '" + uri.text +
                                 "' (supported: nbd://, nbds://, nbd+unix://, nbds+unix://)");
  }
  uri.tls = uri.scheme.starts_with("nbds");

  std::string_view rest = text.substr(scheme_end + 3);
  if (size_t hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::string_view query;
  if (size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view authority = rest;
  std::string_view path;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
  }
  uri.export_name = std::string(path);
  std::string decoded;
  if (!percent_decode(path, decoded))
    return bad_uri(text, "malformed percent-encoding in the export name");

  // The user name only selects TLS credentials; it is not part of the identity.
  if (size_t at = authority.rfind('@'); at != std::string_view::npos)
    authority = authority.substr(at + 1);

  if (uri.unix_socket) {
    if (!authority.empty())
      return bad_uri(text, "a Unix-socket URI has no host ('" + std::string(authority) +
                               "'); write " + uri.scheme + ":///EXPORT?socket=PATH");
  } else {
    std::string_view host = authority;
    std::string_view port;
    if (authority.starts_with('[')) {
      size_t close = authority.find(']');
      if (close == std::string_view::npos) return bad_uri(text, "unterminated IPv6 address");
      host = authority.substr(0, close + 1);
      std::string_view after = authority.substr(close + 1);
      if (!after.empty()) {
        if (after[0] != ':') return bad_uri(text, "unexpected text after the IPv6 address");
        port = after.substr(1);
      }
    } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (host.empty() || host == "[]") return bad_uri(text, "missing host name");
    if (authority.find(':') != std::string_view::npos && port.empty() &&
        !authority.starts_with('['))
      return bad_uri(text, "empty port number");
    if (!port.empty()) {
      unsigned value = 0;
      auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
        return bad_uri(text, "port '" + std::string(port) + "' is not a number from 1 to 65535");
    }
    uri.host = std::string(host);
    uri.port = std::string(port);
  }

  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string value;
    if (!percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1),
                        value))
      return bad_uri(text,
                     "malformed percent-encoding in query parameter '" + std::string(key) + "'");
    if (key == "socket") {
      if (!uri.unix_socket)
        return bad_uri(text, "'socket=' needs a Unix-socket scheme (nbd+unix:// or nbds+unix://)");
      if (value.empty()) return bad_uri(text, "empty socket path");
      uri.socket_path = value;
    } else if (key.starts_with("tls-")) {
      if (!uri.tls)
        return bad_uri(text,
                       "'" + std::string(key) + "' needs a TLS scheme (nbds:// or nbds+unix://)");
    }
    // Other parameters are libnbd's to judge (it refuses the ones it does not know).
  }
  if (uri.unix_socket && uri.socket_path.empty()) return bad_uri(text, "missing '?socket=PATH'");

  out = std::move(uri);
  return IoResult::success();
}

std::string NbdUri::identity() const {
  std::string id = scheme + "://";
  if (!unix_socket) {
    id += host;
    if (!port.empty()) id += ":" + port;
  }
  id += "/" + export_name;
  if (unix_socket) id += "?socket=" + socket_path;
  return id;
}

}  // namespace hydrate
