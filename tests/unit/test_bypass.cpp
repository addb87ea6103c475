// NAME
//   test_bypass.cpp - SkipClientNetworks, SkipAuthenticated, SkipSenders,
//   SkipRecipients
// SUMMARY
//   CIDR parsing and matching at the edges (/0, /32, /128, odd prefix
//   lengths, v4-mapped IPv6 clients, host bits, malformed text), the
//   address patterns, the order of the rules, and the config parser's
//   errors for malformed entries.
#include "icap-milter/policy/bypass.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>

using namespace icapm;

namespace {

// in - is text inside net? (both must parse)
bool in(const char* net, const char* text) {
    std::string why;
    auto c = parse_cidr(net, &why);
    REQUIRE_MESSAGE(c, why);
    auto a = parse_ip(text);
    REQUIRE(a);
    return cidr_contains(*c, *a);
}

// config - a Config with the given bypass lines.
std::shared_ptr<const Config> config(const std::string& lines, std::vector<ConfigError>& errors) {
    return parse_config_text("IcapServer icap://127.0.0.1/avscan\n" + lines, "t.conf", errors);
}

} // namespace

TEST_CASE("bypass: CIDR matching at the edges") {
    CHECK(in("127.0.0.0/8", "127.0.0.1"));
    CHECK(in("127.0.0.0/8", "127.255.255.255"));
    CHECK_FALSE(in("127.0.0.0/8", "128.0.0.1"));
    CHECK(in("192.0.2.7/32", "192.0.2.7"));
    CHECK_FALSE(in("192.0.2.7/32", "192.0.2.6"));
    CHECK(in("192.0.2.7", "192.0.2.7")); // bare address = /32
    CHECK_FALSE(in("192.0.2.7", "192.0.2.8"));
    CHECK(in("0.0.0.0/0", "203.0.113.9"));
    CHECK_FALSE(in("0.0.0.0/0", "2001:db8::1")); // all of IPv4, not IPv6
    CHECK(in("::/0", "2001:db8::1"));
    CHECK(in("::/0", "10.1.2.3"));
    CHECK(in("::1/128", "::1"));
    CHECK(in("::1", "::1"));
    CHECK_FALSE(in("::1/128", "::2"));
    CHECK(in("2001:db8::/32", "2001:db8:ffff::1"));
    CHECK_FALSE(in("2001:db8::/32", "2001:db9::1"));
    CHECK(in("10.0.0.0/9", "10.127.0.1"));
    CHECK_FALSE(in("10.0.0.0/9", "10.128.0.1"));
    CHECK(in("192.0.2.128/25", "192.0.2.200"));
    CHECK_FALSE(in("192.0.2.128/25", "192.0.2.100"));
    CHECK(in("2001:db8::/127", "2001:db8::1"));
    CHECK_FALSE(in("2001:db8::/127", "2001:db8::2"));
    // an IPv4 client on an IPv6 socket
    CHECK(in("127.0.0.0/8", "::ffff:127.0.0.2"));
    CHECK(in("::ffff:127.0.0.0/104", "127.0.0.2"));
    CHECK_FALSE(in("127.0.0.0/8", "::127.0.0.2")); // IPv4-compatible form is a different address
}

TEST_CASE("bypass: malformed networks are refused") {
    for (const char* bad : {"", "/8", "127.0.0.0/", "127.0.0.0/33", "::/129", "127.0.0.0/8/8", "127.0.0.0/-1",
                            "127.0.0.0/+8", "127.0.0.0/ 8", "127.0.0/8", "256.0.0.0/8", "localhost", "[::1]/128",
                            "fe80::1%eth0", "127.0.0.1/8", "2001:db8::1/32", "1.2.3.4/0008", "::1/1280"}) {
        std::string why;
        CHECK_MESSAGE(!parse_cidr(bad, &why), bad);
        CHECK_MESSAGE(!why.empty(), bad);
    }
    std::string why;
    CHECK_FALSE(parse_cidr("192.0.2.1/24", &why));
    CHECK(why == "'192.0.2.1/24' has host bits set beyond the prefix length");
}

TEST_CASE("bypass: client addresses from sockaddr") {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.5", &v4.sin_addr);
    auto a = ip_from_sockaddr(reinterpret_cast<sockaddr*>(&v4));
    REQUIRE(a);
    CHECK(*a == *parse_ip("192.0.2.5"));
    CHECK(*a == *parse_ip("::ffff:192.0.2.5"));
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::5", &v6.sin6_addr);
    a = ip_from_sockaddr(reinterpret_cast<sockaddr*>(&v6));
    REQUIRE(a);
    CHECK(*a == *parse_ip("2001:db8::5"));
    sockaddr other{};
    other.sa_family = AF_UNIX;
    CHECK_FALSE(ip_from_sockaddr(&other));
    CHECK_FALSE(ip_from_sockaddr(nullptr));
}

TEST_CASE("bypass: address patterns") {
    std::string why;
    CHECK(normalize_address_pattern("User@Example.COM", &why) == "user@example.com");
    CHECK(normalize_address_pattern("*@Example.com", &why) == "@example.com");
    CHECK(normalize_address_pattern("@example.com", &why) == "@example.com");
    CHECK(normalize_address_pattern("Example.com", &why) == "example.com");
    for (const char* bad : {"", "@", "user@", "*@", ".example.com", "example.com.", "a b@example.com", "*a@example.com",
                            "<a@example.com>", "ex ample.com", "a@exa*mple.com"}) {
        why.clear();
        CHECK_MESSAGE(normalize_address_pattern(bad, &why).empty(), bad);
        CHECK_MESSAGE(!why.empty(), bad);
    }
    CHECK(address_matches("user@example.com", "User@EXAMPLE.com"));
    CHECK(address_matches("user@example.com", "<user@example.com>"));
    CHECK_FALSE(address_matches("user@example.com", "user2@example.com"));
    CHECK_FALSE(address_matches("user@example.com", "user@example.com.evil"));
    CHECK(address_matches("@example.com", "x@Example.Com"));
    CHECK_FALSE(address_matches("@example.com", "x@sub.example.com"));
    CHECK(address_matches("example.com", "x@example.com"));
    CHECK(address_matches("example.com", "x@mail.sub.example.com"));
    CHECK_FALSE(address_matches("example.com", "x@badexample.com"));
    CHECK_FALSE(address_matches("example.com", "x@example.com.evil.net"));
    CHECK_FALSE(address_matches("example.com", ""));   // the null sender
    CHECK_FALSE(address_matches("example.com", "<>"));
    CHECK_FALSE(address_matches("example.com", "example.com")); // no '@'
    CHECK(address_matches("@example.com", "\"a@b\"@example.com")); // the last '@' separates the domain
}

TEST_CASE("bypass: rules, their order and SkipRecipients needing every recipient") {
    std::vector<ConfigError> errors;
    auto c = config("SkipClientNetworks 127.0.0.0/8 ::1/128,192.0.2.0/24\nSkipAuthenticated yes\n"
                    "SkipSenders @trusted.example *@Partner.Example\nSkipRecipients postmaster@example.com "
                    "abuse@example.com\n",
                    errors);
    REQUIRE(c);
    CHECK(c->skip_client_networks == std::vector<std::string>{"127.0.0.0/8", "::1/128", "192.0.2.0/24"});
    CHECK(c->skip_senders == std::vector<std::string>{"@trusted.example", "@partner.example"});

    BypassInput in;
    in.client = parse_ip("203.0.113.1");
    in.sender = "x@elsewhere.example";
    in.rcpts = {"<postmaster@example.com>", "<user@example.com>"};
    CHECK_FALSE(match_bypass(*c, in));

    in.client = parse_ip("::ffff:127.0.0.2");
    auto m = match_bypass(*c, in);
    REQUIRE(m);
    CHECK(m->rule == BypassRule::ClientNetworks);
    CHECK(m->match == "127.0.0.0/8");
    CHECK(std::string(to_string(m->rule)) == "SkipClientNetworks");
    in.client = parse_ip("192.0.2.200");
    REQUIRE(match_bypass(*c, in));
    CHECK(match_bypass(*c, in)->match == "192.0.2.0/24");
    in.client.reset(); // a unix-socket client: no network rule applies

    in.auth_authen = "alice";
    m = match_bypass(*c, in);
    REQUIRE(m);
    CHECK(m->rule == BypassRule::Authenticated);
    in.auth_authen.clear();

    in.sender = "<Bob@PARTNER.example>";
    m = match_bypass(*c, in);
    REQUIRE(m);
    CHECK(m->rule == BypassRule::Senders);
    CHECK(m->match == "@partner.example");
    in.sender = "bob@sub.partner.example";
    CHECK_FALSE(match_bypass(*c, in));

    in.rcpts = {"<postmaster@example.com>", "<abuse@example.com>"};
    m = match_bypass(*c, in);
    REQUIRE(m);
    CHECK(m->rule == BypassRule::Recipients);
    CHECK(m->match == "postmaster@example.com");
    in.rcpts_complete = false; // more recipients than were kept
    CHECK_FALSE(match_bypass(*c, in));
    in.rcpts_complete = true;
    in.rcpts.clear();
    CHECK_FALSE(match_bypass(*c, in));

    Config off; // the defaults skip nothing
    in.client = parse_ip("127.0.0.1");
    in.auth_authen = "alice";
    in.sender = "a@trusted.example";
    in.rcpts = {"postmaster@example.com"};
    CHECK_FALSE(match_bypass(off, in));
}

TEST_CASE("bypass: the config parser names malformed entries") {
    std::vector<ConfigError> errors;
    CHECK_FALSE(config("SkipClientNetworks 127.0.0.0/8 10.0.0.1/8\n", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].str() == "t.conf:2: SkipClientNetworks: '10.0.0.1/8' has host bits set beyond the prefix length");
    CHECK_FALSE(config("SkipClientNetworks ::1/129\n", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].str() == "t.conf:2: SkipClientNetworks: '::1/129' has a bad prefix length (0-128)");
    CHECK_FALSE(config("SkipClientNetworks example.com\n", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].reason.find("is not an IPv4 or IPv6 network") != std::string::npos);
    CHECK_FALSE(config("SkipSenders user@\n", errors));
    CHECK_FALSE(config("SkipRecipients <a@b.example>\n", errors));
    CHECK_FALSE(config("SkipAuthenticated maybe\n", errors));
}
