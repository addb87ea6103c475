// NAME
//   test_icap_options.cpp - OPTIONS replies into ServerOptions
#include "icap-milter/icap/options.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace icapm;

namespace {

// parse_text - the reply in text, parsed to the end.
IcapResponse parse_text(const std::string& text) {
    ResponseParser p;
    REQUIRE(p.feed(text) == ResponseParser::State::Done);
    return p.response();
}

// parse_golden - tests/data/icap/<name>.icap.
IcapResponse parse_golden(const char* name) {
    std::ifstream f(std::filesystem::path(TEST_DATA_DIR) / "icap" / (std::string(name) + ".icap"), std::ios::binary);
    REQUIRE(f);
    std::ostringstream s;
    s << f.rdbuf();
    return parse_text(s.str());
}

} // namespace

TEST_CASE("icap options: real c-icap reply") {
    std::string err;
    auto o = parse_server_options(parse_golden("cicap_options"), &err);
    REQUIRE(o);
    CHECK(o->methods == std::vector<std::string>{"RESPMOD", "REQMOD"});
    CHECK(o->supports("RESPMOD"));
    CHECK(o->supports("respmod"));
    CHECK_FALSE(o->supports("OPTIONS"));
    CHECK(o->istag == "CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA");
    REQUIRE(o->preview);
    CHECK(*o->preview == 1024);
    CHECK(o->allow_204);
    CHECK(o->ttl == std::chrono::seconds(3600));
    CHECK_FALSE(o->max_connections); // c-icap omits it
    CHECK(o->service == "C-ICAP/0.5.10 server - Antivirus service");
    CHECK(o->version_info.empty());
    CHECK(o->transfer_preview == "*");
    CHECK(o->transfer_ignore.empty());
}

TEST_CASE("icap options: Kaspersky database time and Max-Connections") {
    std::string err;
    auto o = parse_server_options(parse_golden("kaspersky_options"), &err);
    REQUIRE(o);
    CHECK(o->max_connections == 100u);
    CHECK(o->ttl == std::chrono::seconds(300));
    CHECK(o->preview == std::optional<std::size_t>(2048));
    CHECK(o->version_info == "X-AV-Database-time=2024-05-12 09:11:00 UTC");
}

TEST_CASE("icap options: F-Secure ISTag and definition info, Preview 0") {
    std::string err;
    auto o = parse_server_options(parse_golden("fsecure_options"), &err);
    REQUIRE(o);
    CHECK(o->preview == std::optional<std::size_t>(0));
    CHECK(o->version_info.find("X-Definition-Info=Aquarius 2024-05-12_01") != std::string::npos);
    CHECK(o->version_info.find("ISTag=FSAV-2024-05-12_01") != std::string::npos);
}

TEST_CASE("icap options: a non-200 reply means the service is down") {
    std::string err;
    CHECK_FALSE(parse_server_options(parse_golden("cicap_404"), &err));
    CHECK(err.find("404") != std::string::npos);
}

TEST_CASE("icap options: values are bounded and bad ones ignored") {
    std::string err;
    auto o = parse_server_options(parse_text("ICAP/1.0 200 OK\r\n"
                                             "Methods: respmod\r\n"
                                             "Methods: REQMOD, RESPMOD\r\n"
                                             "ISTag: \"0123456789012345678901234567890123456789\"\r\n"
                                             "Preview: lots\r\n"
                                             "Allow: 206, 204\r\n"
                                             "Options-TTL: 99999999999\r\n"
                                             "Max-Connections: 0\r\n"
                                             "Service: a\x01" "b\r\n"
                                             "Encapsulated: null-body=0\r\n\r\n"),
                                  &err);
    REQUIRE(o);
    CHECK(o->methods == std::vector<std::string>{"RESPMOD", "REQMOD"});
    CHECK(o->istag.size() == kMaxIstag);
    CHECK(o->istag == "01234567890123456789012345678901");
    CHECK_FALSE(o->preview);
    CHECK(o->allow_204);
    CHECK(o->ttl == std::chrono::seconds(0)); // 11 digits: not a number we accept
    CHECK_FALSE(o->max_connections);
    CHECK(o->service == "a?b");

    auto big = parse_server_options(parse_text("ICAP/1.0 200 OK\r\nPreview: 999999999\r\n"
                                               "Options-TTL: 999999999\r\n\r\n"),
                                    &err);
    REQUIRE(big);
    CHECK(big->preview == std::optional<std::size_t>(kMaxPreviewOffered));
    CHECK(big->ttl == kMaxOptionsTtl);
    CHECK(big->methods.empty());
    CHECK_FALSE(big->allow_204);
}
