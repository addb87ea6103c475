// NAME
//   bypass.cpp - SkipClientNetworks, SkipAuthenticated, SkipSenders,
//   SkipRecipients
// SUMMARY
//   Addresses are compared as 128-bit values, IPv4 as v4-mapped IPv6, so
//   a client that reaches an IPv6 socket as ::ffff:127.0.0.1 matches the
//   rule 127.0.0.0/8. Networks with host bits set are refused by the
//   config parser (a typo in a bypass list widens or narrows it
//   silently otherwise). Address patterns compare case-insensitively;
//   a message is skipped by SkipRecipients only when every recipient
//   matches, so one unscanned copy never reaches another recipient.
// DIAGNOSTICS
//   None: pure functions; config entries that do not parse get a reason.
#include "icap-milter/policy/bypass.hpp"

#include "icap-milter/common/ascii.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace icapm {

namespace {

// v4_mapped - ::ffff:a.b.c.d for four IPv4 bytes.
IpAddress v4_mapped(const unsigned char* v4) {
    IpAddress a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, v4, 4);
    return a;
}

// is_v4 - an address written in dotted form (no ':').
bool is_v4_text(std::string_view text) noexcept { return text.find(':') == std::string_view::npos; }

// domain_char - what a domain pattern may hold.
bool domain_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '[' ||
           c == ']' || c == ':';
}

// bare_address - "<a@B>" -> "a@b", lower case, blanks trimmed.
std::string bare_address(std::string_view address) {
    address = trim(address);
    if (address.size() >= 2 && address.front() == '<' && address.back() == '>')
        address = address.substr(1, address.size() - 2);
    return lower(trim(address.substr(0, 512)));
}

} // namespace

// parse_ip - inet_pton on a bounded, NUL-terminated copy.
std::optional<IpAddress> parse_ip(std::string_view text) {
    if (text.empty() || text.size() > 45) return std::nullopt;
    char buf[46] = {};
    std::memcpy(buf, text.data(), text.size());
    if (is_v4_text(text)) {
        unsigned char v4[4];
        if (inet_pton(AF_INET, buf, v4) != 1) return std::nullopt;
        return v4_mapped(v4);
    }
    IpAddress a;
    if (inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
    return a;
}

// ip_from_sockaddr - AF_INET / AF_INET6 only.
std::optional<IpAddress> ip_from_sockaddr(const sockaddr* sa) {
    if (!sa) return std::nullopt;
    if (sa->sa_family == AF_INET) {
        sockaddr_in in{};
        std::memcpy(&in, sa, sizeof in);
        return v4_mapped(reinterpret_cast<const unsigned char*>(&in.sin_addr));
    }
    if (sa->sa_family == AF_INET6) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, sa, sizeof in6);
        IpAddress a;
        std::memcpy(a.bytes.data(), &in6.sin6_addr, 16);
        return a;
    }
    return std::nullopt;
}

// parse_cidr - address, optional /LEN in the address family's terms.
std::optional<Cidr> parse_cidr(std::string_view text, std::string* error) {
    auto fail = [&](const std::string& why) -> std::optional<Cidr> {
        if (error) *error = "'" + std::string(text.substr(0, 64)) + "' " + why;
        return std::nullopt;
    };
    const auto slash = text.find('/');
    std::string_view addr_text = text.substr(0, slash);
    auto addr = parse_ip(addr_text);
    if (!addr) return fail("is not an IPv4 or IPv6 network (e.g. 192.0.2.0/24, 2001:db8::/32)");
    const bool v4 = is_v4_text(addr_text);
    const unsigned max = v4 ? 32 : 128;
    unsigned len = max;
    if (slash != std::string_view::npos) {
        std::string_view len_text = text.substr(slash + 1);
        auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
        if (len_text.empty() || len_text.size() > 3 || ec != std::errc{} || end != len_text.data() + len_text.size() ||
            len > max)
            return fail("has a bad prefix length (0-" + std::to_string(max) + ")");
    }
    Cidr c;
    c.net = *addr;
    c.prefix = v4 ? 96 + len : len;
    for (unsigned bit = c.prefix; bit < 128; ++bit)
        if (c.net.bytes[bit / 8] & (0x80u >> (bit % 8))) return fail("has host bits set beyond the prefix length");
    return c;
}

// cidr_contains - compare the first prefix bits.
bool cidr_contains(const Cidr& net, const IpAddress& addr) noexcept {
    unsigned full = net.prefix / 8, rest = net.prefix % 8;
    if (std::memcmp(net.net.bytes.data(), addr.bytes.data(), full) != 0) return false;
    if (rest == 0) return true;
    const unsigned mask = (0xff00u >> rest) & 0xffu;
    return (net.net.bytes[full] & mask) == (addr.bytes[full] & mask);
}

// normalize_address_pattern - check and lower-case one entry.
std::string normalize_address_pattern(std::string_view entry, std::string* error) {
    std::string p = lower(entry);
    auto fail = [&] {
        if (error)
            *error = "'" + std::string(entry.substr(0, 64)) +
                     "' is not an address pattern (user@example.com, @example.com, *@example.com or example.com)";
        return std::string();
    };
    if (p.empty() || p.size() > 254) return fail();
    if (p.starts_with("*@")) p.erase(0, 1);
    const auto at = p.rfind('@');
    std::string_view domain = at == std::string::npos ? std::string_view(p) : std::string_view(p).substr(at + 1);
    std::string_view local = at == std::string::npos ? std::string_view() : std::string_view(p).substr(0, at);
    if (domain.empty() || domain.front() == '.' || domain.back() == '.' || !std::all_of(domain.begin(), domain.end(), domain_char))
        return fail();
    if (!std::all_of(local.begin(), local.end(),
                     [](char c) { return c > 32 && c < 127 && c != '<' && c != '>' && c != '*' && c != ','; }))
        return fail();
    return p;
}

// address_matches - exact address, "@domain" or a domain suffix.
bool address_matches(std::string_view pattern, std::string_view address) {
    const std::string a = bare_address(address);
    const auto at = a.rfind('@');
    if (a.empty() || at == std::string::npos) return false; // the null sender, or no domain
    const std::string_view domain = std::string_view(a).substr(at + 1);
    if (pattern.starts_with("@")) return domain == pattern.substr(1);
    if (pattern.find('@') != std::string_view::npos) return a == pattern;
    return domain == pattern ||
           (domain.size() > pattern.size() && domain.ends_with(pattern) && domain[domain.size() - pattern.size() - 1] == '.');
}

// to_string - the config key of a rule.
const char* to_string(BypassRule r) noexcept {
    switch (r) {
    case BypassRule::ClientNetworks: return "SkipClientNetworks";
    case BypassRule::Authenticated: return "SkipAuthenticated";
    case BypassRule::Senders: return "SkipSenders";
    case BypassRule::Recipients: return "SkipRecipients";
    }
    return "?";
}

// match_bypass - client network, authentication, sender, all recipients.
std::optional<BypassMatch> match_bypass(const Config& c, const BypassInput& in) {
    if (in.client)
        for (const std::string& text : c.skip_client_networks)
            if (auto net = parse_cidr(text, nullptr); net && cidr_contains(*net, *in.client))
                return BypassMatch{BypassRule::ClientNetworks, text};
    if (c.skip_authenticated && !in.auth_authen.empty()) return BypassMatch{BypassRule::Authenticated, "yes"};
    for (const std::string& p : c.skip_senders)
        if (address_matches(p, in.sender)) return BypassMatch{BypassRule::Senders, p};
    if (!c.skip_recipients.empty() && in.rcpts_complete && !in.rcpts.empty()) {
        std::string first;
        bool all = true;
        for (const std::string& r : in.rcpts) {
            auto it = std::find_if(c.skip_recipients.begin(), c.skip_recipients.end(),
                                   [&](const std::string& p) { return address_matches(p, r); });
            if (it == c.skip_recipients.end()) {
                all = false;
                break;
            }
            if (first.empty()) first = *it;
        }
        if (all) return BypassMatch{BypassRule::Recipients, first};
    }
    return std::nullopt;
}

} // namespace icapm
