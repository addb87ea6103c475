// NAME
//   listen_address.hpp - "ADDRESS:PORT" for a listening TCP socket
// SUMMARY
//   MetricsListen's syntax: an IPv4 literal and a port (127.0.0.1:9375)
//   or an IPv6 literal in brackets and a port ([::1]:9375). Names are not
//   accepted: a listener binds to an address, and a name that resolves
//   differently tomorrow would move it. Port 0 is refused (a scraper
//   needs to know the port).
// DIAGNOSTICS
//   parse_listen_address() returns nullopt and a one-line reason; it
//   never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace icapm {

// ListenAddress - a parsed ADDRESS:PORT.
struct ListenAddress {
    std::string host;       // the literal, IPv6 without brackets
    bool ipv6 = false;
    std::uint16_t port = 0; // 1-65535
    // str - the canonical text: "127.0.0.1:9375", "[::1]:9375".
    std::string str() const;
};

// parse_listen_address - parse text; nullopt and *error on anything malformed.
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error);

} // namespace icapm
