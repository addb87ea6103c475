// NAME
//   server_spec.hpp - one IcapServer line: the URI and its per-server options
// SUMMARY
//   "IcapServer URI [weight=N] [priority=N] [preview=auto|off]
//   [user-agent=TEXT] [max-connections=N]". A plain URI stays valid and
//   means weight 1, priority 1, preview auto, user agent "icap-milter" and
//   no cap of our own (ScanThreads, lowered by the server's
//   Max-Connections). Lower priority numbers are preferred, as with MX.
// DIAGNOSTICS
//   parse_server_spec() returns nullopt with a one-line reason.
#pragma once

#include "icap-milter/net/uri.hpp"

#include <optional>
#include <string>
#include <vector>
#include <string_view>

namespace icapm {

// ServerSpec - a configured scanner.
struct ServerSpec {
    IcapUri uri;
    unsigned weight = 1;          // 1-100: share of the load within its priority group
    unsigned priority = 1;        // 1-100: lower groups are used first
    bool preview = true;          // use Preview when offered ("auto")
    std::string user_agent = "icap-milter";
    unsigned max_connections = 0; // 0 = no cap of our own
    // str - canonical text: the URI, then only the options not at their default.
    std::string str() const;
    // operator== - same canonical text.
    bool operator==(const ServerSpec& o) const { return str() == o.str(); }
};

// parse_server_spec - an IcapServer value; nullopt and *error when bad.
std::optional<ServerSpec> parse_server_spec(std::string_view text, std::string* error);

// parse_server_specs - every IcapServer line of a config; throws
// std::runtime_error naming the first bad line.
std::vector<ServerSpec> parse_server_specs(const std::vector<std::string>& lines);

} // namespace icapm
