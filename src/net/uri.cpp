// NAME
//   uri.cpp - parse icap:// and icaps:// scanner addresses
// SUMMARY
//   icap://host[:port]/service is plain TCP (default port 1344);
//   icaps://host[:port]/service is TLS from the first byte (default
//   11344). IPv6 literals are written in brackets.
// DIAGNOSTICS
//   parse_icap_uri() returns nullopt with a one-line reason; it never
//   throws.
#include "icap-milter/net/uri.hpp"

#include <cctype>
#include <charconv>

namespace icapm {

namespace {

constexpr std::size_t kMaxUriLength = 2048;

// fail - set the error text and return nullopt.
std::optional<IcapUri> fail(std::string* error, std::string reason) {
    if (error) *error = std::move(reason);
    return std::nullopt;
}

// valid_host_char - characters allowed in a host name or IPv4 literal.
bool valid_host_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

// valid_path_char - printable ASCII without space; the service may carry a query.
bool valid_path_char(char c) { return c > 0x20 && c < 0x7f; }

} // namespace

// str - canonical text of the address.
std::string IcapUri::str() const {
    std::string out = tls ? "icaps://" : "icap://";
    if (host.find(':') != std::string::npos)
        out += "[" + host + "]";
    else
        out += host;
    out += ":" + std::to_string(port) + "/" + service;
    return out;
}

// parse_icap_uri - split scheme, host, port and service, checking each.
std::optional<IcapUri> parse_icap_uri(std::string_view text, std::string* error) {
    if (text.size() > kMaxUriLength) return fail(error, "URI too long");
    IcapUri uri;
    if (text.starts_with("icaps://")) {
        uri.tls = true;
        uri.port = 11344;
        text.remove_prefix(8);
    } else if (text.starts_with("icap://")) {
        text.remove_prefix(7);
    } else {
        return fail(error, "URI must start with icap:// or icaps://");
    }
    const auto slash = text.find('/');
    std::string_view authority = text.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : text.substr(slash + 1);
    if (authority.find('@') != std::string_view::npos) return fail(error, "user info is not supported in an ICAP URI");

    std::string_view port_text;
    if (authority.starts_with("[")) {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return fail(error, "unterminated IPv6 literal");
        uri.host = std::string(authority.substr(1, close - 1));
        for (char c : uri.host)
            if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'))
                return fail(error, "bad IPv6 literal");
        std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') return fail(error, "junk after IPv6 literal");
            port_text = rest.substr(1);
            if (port_text.empty()) return fail(error, "empty port");
        }
    } else {
        const auto colon = authority.find(':');
        uri.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) return fail(error, "empty port");
        }
        for (char c : uri.host)
            if (!valid_host_char(c)) return fail(error, "bad character in host name");
    }
    if (uri.host.empty()) return fail(error, "missing host");
    if (!port_text.empty()) {
        unsigned port = 0;
        auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535)
            return fail(error, "bad port");
        uri.port = static_cast<std::uint16_t>(port);
    }
    if (path.empty()) return fail(error, "missing service path (e.g. /avscan)");
    for (char c : path)
        if (!valid_path_char(c)) return fail(error, "bad character in service path");
    uri.service = std::string(path);
    return uri;
}

} // namespace icapm
