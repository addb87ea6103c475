// NAME
//   test_icap_response.cpp - ICAP response parser: golden files, folding,
//   100 Continue, limits and malformed input
#include "icap-milter/icap/response.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

using namespace icapm;
using State = ResponseParser::State;

namespace {

// golden_dir - tests/data/icap.
std::filesystem::path golden_dir() { return std::filesystem::path(TEST_DATA_DIR) / "icap"; }

// slurp - a whole file, bytes as stored.
std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    REQUIRE(f);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// parse_all - feed text in one piece; Continue is resumed.
State parse_all(ResponseParser& p, std::string_view text) {
    State s = p.feed(text);
    while (s == State::Continue) s = p.resume();
    return s;
}

// parse_bytewise - feed one byte at a time.
State parse_bytewise(ResponseParser& p, std::string_view text) {
    State s = State::NeedMore;
    for (char c : text) {
        s = p.feed(std::string_view(&c, 1));
        while (s == State::Continue) s = p.resume();
    }
    return s;
}

// sha_of - SHA-256 of a string.
Digest sha_of(std::string_view s) {
    Sha256 h;
    h.update(s);
    return h.finish();
}

} // namespace

TEST_CASE("icap response: every golden file parses completely, whole or byte by byte") {
    int files = 0;
    for (const auto& e : std::filesystem::directory_iterator(golden_dir())) {
        if (e.path().extension() != ".icap") continue;
        ++files;
        CAPTURE(e.path().filename().string());
        const std::string text = slurp(e.path());
        ResponseParser whole, bytes;
        REQUIRE(parse_all(whole, text) == State::Done);
        REQUIRE(parse_bytewise(bytes, text) == State::Done);
        CHECK(whole.excess() == 0);
        const IcapResponse& a = whole.response();
        const IcapResponse& b = bytes.response();
        CHECK(a.status == b.status);
        CHECK(a.headers.size() == b.headers.size());
        CHECK(a.http_status == b.http_status);
        CHECK(a.body_length == b.body_length);
        CHECK(a.body_sha256 == b.body_sha256);
        CHECK(a.connection_close == b.connection_close);
    }
    CHECK(files >= 40);
}

TEST_CASE("icap response: c-icap EICAR reply in detail") {
    const std::string text = slurp(golden_dir() / "cicap_eicar.icap");
    ResponseParser p;
    REQUIRE(parse_all(p, text) == State::Done);
    const IcapResponse& r = p.response();
    CHECK(r.status == 200);
    CHECK(r.reason == "OK");
    CHECK_FALSE(r.connection_close); // the HTTP "Connection: close" is not ICAP's
    CHECK(r.http_headers.has_token("Connection", "close"));
    REQUIRE(r.headers.find("istag"));
    CHECK(r.headers.find("istag")->value == "\"CI0001-L5CkDhq+qWNs+PZ5DxxXsAAA\"");
    const HeaderField* v = r.headers.find("x-violations-found");
    REQUIRE(v);
    CHECK(v->value == "1 - Eicar-Body-Test.UNOFFICIAL 0 0");
    REQUIRE(v->lines.size() == 5);
    CHECK(v->lines[2] == "Eicar-Body-Test.UNOFFICIAL");
    CHECK(r.http_status == 403);
    CHECK(r.http_reason == "Forbidden");
    CHECK(r.has_body);
    CHECK(r.body_length == 0x1e6);
    REQUIRE(r.encapsulated);
    CHECK(r.encapsulated->res_hdr == 0u);
    CHECK(r.encapsulated->res_body == 161u);
}

TEST_CASE("icap response: echo body is counted and hashed, not stored") {
    const std::string text = slurp(golden_dir() / "cicap_clean_echo.icap");
    const std::string sent = slurp(golden_dir() / "cicap_clean_echo.sent");
    ResponseParser p;
    REQUIRE(parse_all(p, text) == State::Done);
    CHECK(p.response().body_length == sent.size());
    CHECK(p.response().body_sha256 == sha_of(sent));
    ResponseParser m;
    REQUIRE(parse_all(m, slurp(golden_dir() / "cicapx_echo_multichunk.icap")) == State::Done);
    const std::string sent2 = slurp(golden_dir() / "cicapx_echo_multichunk.sent");
    CHECK(m.response().body_sha256 == sha_of(sent2));
}

TEST_CASE("icap response: 204 without Encapsulated, errors with Connection: close") {
    ResponseParser ok;
    REQUIRE(parse_all(ok, slurp(golden_dir() / "cicap_clean_204.icap")) == State::Done);
    CHECK(ok.response().status == 204);
    CHECK_FALSE(ok.response().encapsulated);
    CHECK_FALSE(ok.response().connection_close);
    ResponseParser bad;
    REQUIRE(parse_all(bad, slurp(golden_dir() / "cicap_500_clamd_down.icap")) == State::Done);
    CHECK(bad.response().status == 500);
    CHECK(bad.response().connection_close);
}

TEST_CASE("icap response: folded header lines are unfolded, names case-insensitive") {
    ResponseParser p;
    REQUIRE(parse_all(p, "ICAP/1.0 204 No Content\r\n"
                         "X-Long: first\r\n"
                         "\tsecond\r\n"
                         "   third  \r\n"
                         "CONNECTION: keep-alive, Close\r\n"
                         "\r\n") == State::Done);
    const HeaderField* f = p.response().headers.find("x-LONG");
    REQUIRE(f);
    CHECK(f->value == "first second third");
    CHECK(f->lines == std::vector<std::string>{"first", "second", "third"});
    CHECK(p.response().connection_close);
}

TEST_CASE("icap response: a fold before any header is an error") {
    ResponseParser p;
    CHECK(parse_all(p, "ICAP/1.0 204 No Content\r\n folded\r\n\r\n") == State::Error);
    CHECK(p.error().find("continuation") != std::string::npos);
}

TEST_CASE("icap response: 100 Continue stops until resume, and may share a packet with the final reply") {
    ResponseParser p;
    const std::string text = "ICAP/1.0 100 Continue\r\n\r\nICAP/1.0 204 No Content\r\nISTag: \"x\"\r\n\r\n";
    CHECK(p.feed(text) == State::Continue);
    CHECK(p.response().status == 100);
    CHECK(p.resume() == State::Done);
    CHECK(p.response().status == 204);
    CHECK(p.response().after_continue);
    CHECK(p.bytes_seen() == text.size());
    CHECK(p.excess() == 0);

    ResponseParser q;
    CHECK(q.feed("ICAP/1.0 100 Continue\r\n\r\n") == State::Continue);
    CHECK(q.resume() == State::NeedMore);
    CHECK_FALSE(q.in_headers());
    CHECK(q.feed("ICAP/1.0 2") == State::NeedMore);
    CHECK(q.in_headers());
    CHECK(q.feed("04 No Content\r\n\r\n") == State::Done);
}

TEST_CASE("icap response: bytes after the final reply are counted as excess") {
    ResponseParser p;
    CHECK(p.feed("ICAP/1.0 204 No Content\r\n\r\nICAP/1.0 204") == State::Done);
    CHECK(p.excess() == 12);
}

TEST_CASE("icap response: garbage status lines are protocol errors") {
    for (const char* line : {"HTTP/1.1 200 OK", "ICAP/1.1 200 OK", "ICAP/1.0 20 OK", "ICAP/1.0 2000 OK",
                             "ICAP/1.0 abc OK", "ICAP/1.0  200 OK", "icap/1.0 200 OK", "ICAP/1.0 099 x", "",
                             "\x16\x03\x01\x02\x00", "SSH-2.0-OpenSSH_9.2"}) {
        CAPTURE(line);
        ResponseParser p;
        CHECK(p.feed(std::string(line) + "\r\n\r\n") == State::Error);
        CHECK_FALSE(p.error().empty());
    }
    ResponseParser ok;
    CHECK(ok.feed("ICAP/1.0 204\r\n\r\n") == State::Done); // reason phrase may be empty
}

TEST_CASE("icap response: header lines without a colon or with bad names are rejected") {
    for (const std::string& h : {std::string("NoColonHere"), std::string("Bad Name: x"), std::string(": empty"),
                                 std::string("X-Nul: a\0b", 10), std::string("X-Cr: a\rb")}) {
        ResponseParser p;
        const std::string text = "ICAP/1.0 204 No Content\r\n" + h + "\r\n\r\n";
        CAPTURE(h);
        CHECK(p.feed(text) == State::Error);
    }
}

TEST_CASE("icap response: oversized and endless header blocks are rejected") {
    SUBCASE("one endless line") {
        ResponseParser p;
        State s = p.feed("ICAP/1.0 204 No Content\r\nX-Big: ");
        std::string junk(4096, 'a');
        for (int i = 0; i < 100 && s == State::NeedMore; ++i) s = p.feed(junk);
        CHECK(s == State::Error);
        CHECK(p.error().find("too long") != std::string::npos);
    }
    SUBCASE("a status line without end") {
        ResponseParser p;
        State s = p.feed("ICAP/1.0 204 ");
        for (int i = 0; i < 100 && s == State::NeedMore; ++i) s = p.feed(std::string(4096, 'x'));
        CHECK(s == State::Error);
    }
    SUBCASE("too many header lines") {
        ResponseParser p;
        std::string text = "ICAP/1.0 204 No Content\r\n";
        for (int i = 0; i < 201; ++i) text += "X-H: 1\r\n";
        text += "\r\n";
        CHECK(p.feed(text) == State::Error);
        CHECK(p.error().find("header lines") != std::string::npos);
    }
    SUBCASE("200 lines are still fine") {
        ResponseParser p;
        std::string text = "ICAP/1.0 204 No Content\r\n";
        for (int i = 0; i < 200; ++i) text += "X-H: 1\r\n";
        CHECK(p.feed(text + "\r\n") == State::Done);
    }
    SUBCASE("too many folded lines count too") {
        ResponseParser p;
        std::string text = "ICAP/1.0 204 No Content\r\nX-Violations-Found: 1\r\n";
        for (int i = 0; i < 300; ++i) text += "\tx\r\n";
        CHECK(p.feed(text + "\r\n") == State::Error);
    }
    SUBCASE("the limit does not depend on how the bytes arrive") {
        ParserLimits lim;
        lim.max_header_bytes = 1000;
        const std::string fits = "ICAP/1.0 204 No Content\r\nX-A: " + std::string(900, 'a') + "\r\n\r\n";
        ResponseParser whole(lim), bytes(lim);
        CHECK(whole.feed(fits) == State::Done);
        State s = State::NeedMore;
        for (char c : fits) s = bytes.feed(std::string_view(&c, 1));
        CHECK(s == State::Done);
        const std::string too_big = "ICAP/1.0 204 No Content\r\nX-A: " + std::string(980, 'a') + "\r\n\r\n";
        ResponseParser w2(lim), b2(lim);
        CHECK(w2.feed(too_big) == State::Error);
        for (char c : too_big) s = b2.feed(std::string_view(&c, 1));
        CHECK(s == State::Error);
    }
    SUBCASE("a 64 KiB header block") {
        ParserLimits lim;
        ResponseParser p(lim);
        std::string text = "ICAP/1.0 204 No Content\r\n";
        for (int i = 0; i < 100; ++i) text += "X-H: " + std::string(700, 'v') + "\r\n";
        CHECK(p.feed(text + "\r\n") == State::Error);
    }
}

TEST_CASE("icap response: Encapsulated must be well formed") {
    std::string err;
    CHECK(parse_encapsulated("res-hdr=0, res-body=10", 65536, &err));
    CHECK(parse_encapsulated("null-body=0", 65536, &err));
    CHECK(parse_encapsulated("req-hdr=0, res-hdr=10, null-body=20", 65536, &err));
    CHECK(parse_encapsulated("opt-body=0", 65536, &err));
    for (const char* bad : {"", "res-hdr=0", "res-body=5", "res-hdr=0, res-body=0", "res-hdr=10, res-body=5",
                            "res-hdr=0, res-body=10, null-body=20", "res-hdr=0, res-hdr=3, res-body=9",
                            "foo-hdr=0, res-body=3", "res-hdr=0, res-body=99999999999",
                            "res-hdr=0, res-body=70000", "res-hdr=0, res-body=-1", "res-hdr=0,, res-body=3",
                            "res-hdr=0, res-body=1x", "res-hdr=3, req-hdr=0, null-body=9"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_encapsulated(bad, 65536, &err));
    }
    ResponseParser p;
    CHECK(p.feed("ICAP/1.0 200 OK\r\nEncapsulated: null-body=0\r\nEncapsulated: null-body=0\r\n\r\n") ==
          State::Error);
}

TEST_CASE("icap response: encapsulated HTTP header must be valid and fill its section") {
    // The section is exactly as long as declared; what it holds must fit.
    auto run = [](const std::string& http) {
        ResponseParser p;
        return p.feed("ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, null-body=" + std::to_string(http.size()) +
                      "\r\n\r\n" + http);
    };
    CHECK(run("HTTP/1.1 403 Forbidden\r\nX: y\r\n\r\n") == State::Done);
    CHECK(run("HTTP/1.0 200 OK\r\n\r\n") == State::Done);
    CHECK(run("HTTP/1.1 403 Forbidden\r\nX: y\r\nZ") == State::Error);    // no blank line
    CHECK(run("HTTP/1.1 403 Forbidden\r\n\r\nXXXXX") == State::Error);    // junk after it
    CHECK(run("HTTZ/1.1 403 Forbidden\r\n\r\n") == State::Error);
    CHECK(run("HTTP/1.1 4x3 Forbidden\r\n\r\n") == State::Error);
    CHECK(run("HTTP/1.1 403 Forbidden\r\nno colon\r\n\r\n") == State::Error);
}

TEST_CASE("icap response: chunk sizes are parsed safely") {
    const std::string head = "ICAP/1.0 200 OK\r\nEncapsulated: res-hdr=0, res-body=19\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
    SUBCASE("extensions ignored") {
        ResponseParser p;
        CHECK(p.feed(head + "3;x=y\r\nabc\r\n0; ieof\r\n\r\n") == State::Done);
        CHECK(p.response().body_length == 3);
    }
    SUBCASE("upper-case hex") {
        ResponseParser p;
        CHECK(p.feed(head + "A\r\n0123456789\r\n0\r\n\r\n") == State::Done);
        CHECK(p.response().body_length == 10);
    }
    SUBCASE("more than 16 hex digits") {
        ResponseParser p;
        CHECK(p.feed(head + "00000000000000001\r\n") == State::Error);
        CHECK(p.error().find("16 hex digits") != std::string::npos);
    }
    SUBCASE("64-bit overflow value") {
        ResponseParser p;
        CHECK(p.feed(head + "ffffffffffffffff\r\n") == State::Error);
    }
    SUBCASE("beyond the chunk limit") {
        ParserLimits lim;
        lim.max_chunk_size = 100;
        ResponseParser p(lim);
        CHECK(p.feed(head + "65\r\n") == State::Error);
    }
    SUBCASE("beyond the body limit across chunks") {
        ParserLimits lim;
        lim.max_body = 15;
        ResponseParser p(lim);
        CHECK(p.feed(head + "a\r\n0123456789\r\n") == State::NeedMore);
        CHECK(p.feed("6\r\n") == State::Error);
    }
    SUBCASE("not hex") {
        ResponseParser p;
        CHECK(p.feed(head + "xyz\r\n") == State::Error);
        ResponseParser q;
        CHECK(q.feed(head + "3 junk\r\n") == State::Error);
        ResponseParser r;
        CHECK(r.feed(head + "-3\r\n") == State::Error);
    }
    SUBCASE("data longer than its size") {
        ResponseParser p;
        CHECK(p.feed(head + "3\r\nabcd\r\n0\r\n\r\n") == State::Error);
    }
    SUBCASE("endless chunk-size line") {
        ResponseParser p;
        State s = p.feed(head + "3;");
        for (int i = 0; i < 10 && s == State::NeedMore; ++i) s = p.feed(std::string(500, 'e'));
        CHECK(s == State::Error);
    }
    SUBCASE("endless trailer") {
        ResponseParser p;
        State s = p.feed(head + "0\r\n");
        for (int i = 0; i < 2000 && s == State::NeedMore; ++i) s = p.feed("X-T: 1\r\n");
        CHECK(s == State::Error);
    }
}
