// NAME
//   uri.hpp - icap:// and icaps:// server addresses
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace icapm {

// IcapUri - a parsed scanner address. Default ports 1344 / 11344.
struct IcapUri {
    bool tls = false;
    std::string host;      // name or literal (IPv6 without brackets)
    std::uint16_t port = 1344;
    std::string service;   // path without the leading '/', e.g. "avscan"
    // str - canonical form, "icaps://host:port/service".
    std::string str() const;
};

// parse_icap_uri - parse text; on failure returns nullopt and sets *error.
std::optional<IcapUri> parse_icap_uri(std::string_view text, std::string* error);

} // namespace icapm
