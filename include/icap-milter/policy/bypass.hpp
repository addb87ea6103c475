// NAME
//   bypass.hpp - which messages are not scanned (SkipClientNetworks,
//   SkipAuthenticated, SkipSenders, SkipRecipients)
// SUMMARY
//   Pure matching: CIDR networks (IPv4 and IPv6, an IPv4 address also in
//   its v4-mapped IPv6 form), the {auth_authen} macro, and address
//   patterns. A skipped message is never Clean: it gets
//   X-Virus-Status: Skipped (see milter/callbacks.cpp).
#pragma once

#include "icap-milter/config/config.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sockaddr;

namespace icapm {

// IpAddress - an address as 16 bytes; IPv4 as ::ffff:a.b.c.d.
struct IpAddress {
    std::array<std::uint8_t, 16> bytes{};
    bool operator==(const IpAddress&) const = default;
};

// Cidr - a network: address and prefix length in IPv6 terms (an IPv4
// /n is ::ffff:0:0/96+n).
struct Cidr {
    IpAddress net;
    unsigned prefix = 128;
};

// parse_ip - a dotted IPv4 or an IPv6 address (no brackets, no zone).
std::optional<IpAddress> parse_ip(std::string_view text);

// ip_from_sockaddr - the address of an AF_INET or AF_INET6 sockaddr.
std::optional<IpAddress> ip_from_sockaddr(const sockaddr* sa);

// parse_cidr - "ADDR/LEN" or a bare address (/32, /128); nullopt and
// *error for a malformed one or one with host bits set.
std::optional<Cidr> parse_cidr(std::string_view text, std::string* error);

// cidr_contains - is addr inside net?
bool cidr_contains(const Cidr& net, const IpAddress& addr) noexcept;

// normalize_address_pattern - a SkipSenders/SkipRecipients entry as
// stored (lower case): "user@example.com" (that address), "@example.com"
// or "*@example.com" (any address at exactly that domain),
// "example.com" (that domain and its subdomains); "" and *error when
// malformed.
std::string normalize_address_pattern(std::string_view entry, std::string* error);

// address_matches - does address ("<a@b>" or "a@b") match a normalized
// pattern? The null sender matches nothing.
bool address_matches(std::string_view pattern, std::string_view address);

// BypassRule - which key let a message through unscanned.
enum class BypassRule { ClientNetworks, Authenticated, Senders, Recipients };

// to_string - the key's name ("SkipClientNetworks", ...).
const char* to_string(BypassRule r) noexcept;

// BypassInput - what the MTA told us about a message.
struct BypassInput {
    std::optional<IpAddress> client;   // none for a unix-socket or unknown client
    std::string auth_authen;           // {auth_authen}, "" when not authenticated
    std::string sender;                // envelope sender
    std::vector<std::string> rcpts;    // envelope recipients
    bool rcpts_complete = true;        // false when more arrived than were kept
};

// BypassMatch - the rule that matched and what it matched on.
struct BypassMatch {
    BypassRule rule;
    std::string match;                 // the entry ("127.0.0.0/8", "@example.com") or "yes"
};

// match_bypass - the first matching rule, in the order client network,
// authenticated, sender, recipients (all of them); nullopt = scan.
std::optional<BypassMatch> match_bypass(const Config& c, const BypassInput& in);

} // namespace icapm
