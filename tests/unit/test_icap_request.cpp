// NAME
//   test_icap_request.cpp - ICAP request writer: exact bytes and offsets
#include "icap-milter/icap/request.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace icapm;

namespace {

// plain_uri - icap://scanner.example:1344/avscan
IcapUri plain_uri() {
    IcapUri u;
    u.host = "scanner.example";
    u.port = 1344;
    u.service = "avscan";
    return u;
}

// encapsulated_value - the Encapsulated header value of a request.
std::string encapsulated_value(const std::string& req) {
    auto p = req.find("Encapsulated: ");
    REQUIRE(p != std::string::npos);
    auto e = req.find("\r\n", p);
    return req.substr(p + 14, e - p - 14);
}

} // namespace

TEST_CASE("icap request: OPTIONS is exact and has a null body") {
    CHECK(build_options_request(plain_uri(), "icap-milter/0.1") ==
          "OPTIONS icap://scanner.example:1344/avscan ICAP/1.0\r\n"
          "Host: scanner.example:1344\r\n"
          "User-Agent: icap-milter/0.1\r\n"
          "Encapsulated: null-body=0\r\n"
          "\r\n");
}

TEST_CASE("icap request: RESPMOD header block is exact") {
    RespmodFrame f = build_respmod_head(plain_uri(), RespmodHead{"icap-milter", "report.pdf", 12345, std::nullopt});
    const std::string req_hdr = "GET http://icap-milter/report.pdf HTTP/1.1\r\nHost: icap-milter\r\n\r\n";
    const std::string res_hdr = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                                "Content-Length: 12345\r\n\r\n";
    const std::string icap = "RESPMOD icap://scanner.example:1344/avscan ICAP/1.0\r\n"
                             "Host: scanner.example:1344\r\n"
                             "User-Agent: icap-milter\r\n"
                             "Allow: 204\r\n"
                             "Encapsulated: req-hdr=0, res-hdr=" + std::to_string(req_hdr.size()) +
                             ", res-body=" + std::to_string(req_hdr.size() + res_hdr.size()) + "\r\n\r\n";
    CHECK(f.bytes == icap + req_hdr + res_hdr);
    CHECK(f.icap_head == icap.size());
    CHECK(f.res_hdr == req_hdr.size());
    CHECK(f.res_body == req_hdr.size() + res_hdr.size());
}

TEST_CASE("icap request: Encapsulated offsets point at the sections") {
    const std::vector<std::string> names = {"", "a", "r\xc3\xa9sum\xc3\xa9 2024.docx", std::string(1000, 'x')};
    for (const std::string& name : names) {
        for (std::uint64_t len : {0ULL, 1ULL, 4096ULL, 10000000000ULL}) {
            RespmodFrame f = build_respmod_head(plain_uri(), RespmodHead{"ua", name, len, 1024});
            const std::string body = f.bytes.substr(f.icap_head);
            CHECK(f.bytes.substr(f.icap_head - 4, 4) == "\r\n\r\n");
            CHECK(body.rfind("GET http://icap-milter/", 0) == 0);
            CHECK(body.substr(f.res_hdr).rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
            CHECK(body.substr(f.res_hdr - 4, 4) == "\r\n\r\n");
            CHECK(f.res_body == body.size()); // the chunked body starts right after
            CHECK(body.find("Content-Length: " + std::to_string(len) + "\r\n") != std::string::npos);
            CHECK(encapsulated_value(f.bytes) ==
                  "req-hdr=0, res-hdr=" + std::to_string(f.res_hdr) + ", res-body=" + std::to_string(f.res_body));
        }
    }
}

TEST_CASE("icap request: Allow 204 always, Preview only when offered, never Transfer-Encoding") {
    RespmodFrame without = build_respmod_head(plain_uri(), RespmodHead{"ua", "f", 10, std::nullopt});
    RespmodFrame with = build_respmod_head(plain_uri(), RespmodHead{"ua", "f", 10, 7});
    CHECK(without.bytes.find("\r\nAllow: 204\r\n") != std::string::npos);
    CHECK(with.bytes.find("\r\nAllow: 204\r\n") != std::string::npos);
    CHECK(without.bytes.find("Preview:") == std::string::npos);
    CHECK(with.bytes.find("\r\nPreview: 7\r\n") != std::string::npos);
    RespmodFrame zero = build_respmod_head(plain_uri(), RespmodHead{"ua", "f", 0, 0});
    CHECK(zero.bytes.find("\r\nPreview: 0\r\n") != std::string::npos);
    for (const auto* f : {&without, &with, &zero}) {
        CHECK(f->bytes.find("Transfer-Encoding") == std::string::npos);
        CHECK(f->bytes.find("ICAP/1.0\r\nHost: scanner.example:1344\r\n") != std::string::npos);
    }
}

TEST_CASE("icap request: filenames are url-encoded and bounded") {
    CHECK(url_encode_filename("report.pdf") == "report.pdf");
    CHECK(url_encode_filename("a b/c?.exe") == "a%20b%2Fc%3F.exe");
    CHECK(url_encode_filename("\xc3\xbc.txt") == "%C3%BC.txt");
    CHECK(url_encode_filename("x\r\nInjected: 1") == "x%0D%0AInjected%3A%201");
    CHECK(url_encode_filename("") == "unnamed");
    CHECK(url_encode_filename(std::string(5000, 'a')).size() == kMaxUrlFilename);
    RespmodFrame f = build_respmod_head(plain_uri(), RespmodHead{"ua", "evil\r\nX-Virus-ID: none", 1, std::nullopt});
    CHECK(f.bytes.find("\r\nX-Virus-ID") == std::string::npos);
}

TEST_CASE("icap request: configured strings cannot inject header lines") {
    CHECK(header_safe("ok value") == "ok value");
    CHECK(header_safe("a\r\nB: c") == "a??B: c");
    CHECK(header_safe(std::string(300, 'x')).size() == 256);
    std::string opt = build_options_request(plain_uri(), "ua\r\nX-Evil: 1");
    CHECK(opt.find("\r\nX-Evil") == std::string::npos);
}

TEST_CASE("icap request: IPv6 literals are bracketed, scheme is icap on TLS too") {
    IcapUri u;
    u.host = "2001:db8::1";
    u.port = 11344;
    u.tls = true;
    u.service = "virus_scan?allow204=on";
    std::string opt = build_options_request(u, "ua");
    CHECK(opt.rfind("OPTIONS icap://[2001:db8::1]:11344/virus_scan?allow204=on ICAP/1.0\r\n", 0) == 0);
    CHECK(opt.find("\r\nHost: [2001:db8::1]:11344\r\n") != std::string::npos);
}

TEST_CASE("icap request: chunk framing") {
    CHECK(chunk_header(1) == "1\r\n");
    CHECK(chunk_header(0x1a) == "1a\r\n");
    CHECK(chunk_header(65536) == "10000\r\n");
    CHECK(kLastChunk == "0\r\n\r\n");
    CHECK(kLastChunkIeof == "0; ieof\r\n\r\n");
    CHECK(kChunkEnd == "\r\n");
}
