// NAME
//   listen_address.cpp - parse MetricsListen's ADDRESS:PORT
// SUMMARY
//   The address half must be a numeric literal (inet_pton decides); the
//   port a decimal number 1-65535 without sign or blanks.
// DIAGNOSTICS
//   Every failure is one line naming the text and what is wrong with it.
#include "icap-milter/net/listen_address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace icapm {

namespace {

// fail - set the error text and return nullopt.
std::optional<ListenAddress> fail(std::string* error, std::string_view text, const char* why) {
    if (error) *error = "'" + std::string(text.substr(0, 80)) + "' is not ADDRESS:PORT: " + why;
    return std::nullopt;
}

// parse_port - "1".."65535", digits only.
std::optional<std::uint16_t> parse_port(std::string_view t) {
    if (t.empty() || t.size() > 5) return std::nullopt;
    unsigned v = 0;
    auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec != std::errc{} || end != t.data() + t.size() || v == 0 || v > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(v);
}

} // namespace

// str - brackets around an IPv6 literal.
std::string ListenAddress::str() const {
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// parse_listen_address - split at the last colon (after the bracket for IPv6).
std::optional<ListenAddress> parse_listen_address(std::string_view text, std::string* error) {
    if (text.empty() || text.size() > 64) return fail(error, text, "empty or too long");
    ListenAddress a;
    std::string_view host, port;
    if (text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return fail(error, text, "no ']' after the IPv6 address");
        if (close + 1 >= text.size() || text[close + 1] != ':') return fail(error, text, "no ':PORT' after ']'");
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        a.ipv6 = true;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return fail(error, text, "no ':PORT'");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return fail(error, text, "an IPv6 address is written in brackets, as [::1]:9375");
    }
    const auto p = parse_port(port);
    if (!p) return fail(error, text, "the port must be a number 1-65535");
    a.port = *p;
    a.host = std::string(host);
    unsigned char buf[16];
    if (a.host.empty() || inet_pton(a.ipv6 ? AF_INET6 : AF_INET, a.host.c_str(), buf) != 1)
        return fail(error, text, a.ipv6 ? "not an IPv6 address" : "not an IPv4 address (names are not accepted)");
    return a;
}

} // namespace icapm
