// NAME
//   test_uri.cpp - icap:// and icaps:// address parsing
#include "icap-milter/net/uri.hpp"

#include <doctest/doctest.h>

using namespace icapm;

TEST_CASE("uri: good addresses") {
    struct Row { const char* in; bool tls; const char* host; unsigned port; const char* service; };
    const Row rows[] = {
        {"icap://127.0.0.1/avscan", false, "127.0.0.1", 1344, "avscan"},
        {"icaps://scanner.example.com/avscan", true, "scanner.example.com", 11344, "avscan"},
        {"icap://h:1345/srv?allow204=on", false, "h", 1345, "srv?allow204=on"},
        {"icaps://[::1]:2000/a/b", true, "::1", 2000, "a/b"},
    };
    for (const auto& r : rows) {
        std::string err;
        auto u = parse_icap_uri(r.in, &err);
        REQUIRE_MESSAGE(u, r.in);
        CHECK(u->tls == r.tls);
        CHECK(u->host == r.host);
        CHECK(u->port == r.port);
        CHECK(u->service == r.service);
    }
    CHECK(parse_icap_uri("icaps://[::1]:2000/x", nullptr)->str() == "icaps://[::1]:2000/x");
}

TEST_CASE("uri: bad addresses are refused with a reason") {
    const char* bad[] = {"http://h/x", "icap://", "icap:///x", "icap://h", "icap://h:0/x", "icap://h:65536/x",
                         "icap://h:12a/x", "icap://u@h/x", "icap://[::1/x", "icap://h h/x", "icap://h:/x",
                         "icap://h/x y"};
    for (const char* b : bad) {
        std::string err;
        CHECK_MESSAGE(!parse_icap_uri(b, &err), b);
        CHECK(!err.empty());
    }
    CHECK(!parse_icap_uri(std::string(3000, 'a'), nullptr));
}
