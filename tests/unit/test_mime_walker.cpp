// NAME
//   test_mime_walker.cpp - unit tests of the GMime part walker
// SUMMARY
//   Fixtures in tests/data/mime plus messages built in the tests: part
//   ids, names, types, decoding, hashes, encrypted parts (genuine PGP/MIME
//   and S/MIME against wrappers that only claim encryption), oversized parts,
//   depth and part-count limits with the whole-message fallback,
//   malformed input, CRLF/LF, temp file hygiene and concurrent walks.
#include "icap-milter/common/sha256.hpp"
#include "icap-milter/mime/walker.hpp"

#include "mime_fixtures.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace icapm;
using namespace icapm::test;

namespace {

// walk - walk raw bytes (spooled in memory, or on disk when mem is 0).
WalkResult walk(std::string_view raw, const WalkLimits& limits = {}, std::size_t mem = 1u << 20) {
    auto s = spool_of(raw, mem, limits.temp_dir);
    return walk_message(*s, limits);
}

// content - an item's decoded bytes.
std::string content(const ScanItem& it) {
    REQUIRE(it.data);
    auto r = it.data->reader();
    std::string out;
    std::vector<char> buf(4096);
    for (std::size_t n; (n = r->read(buf)) > 0;) out.append(buf.data(), n);
    CHECK(out.size() == it.size);
    return out;
}

// ids - the part ids, comma separated, in result order.
std::string ids(const WalkResult& r) {
    std::string s;
    for (const auto& it : r.items) s += (s.empty() ? "" : ",") + it.part_id;
    return s;
}

// item - the item with this part id (fails the test when missing).
const ScanItem& item(const WalkResult& r, const std::string& id) {
    for (const auto& it : r.items)
        if (it.part_id == id) return it;
    FAIL("no item " << id << " in " << ids(r));
    throw std::logic_error("unreachable");
}

// sha - hex SHA-256 of bytes.
std::string sha(std::string_view bytes) {
    Sha256 h;
    h.update(bytes);
    return to_hex(h.finish());
}

// all_content - every scannable item's bytes, concatenated.
std::string all_content(const WalkResult& r) {
    std::string s;
    for (const auto& it : r.items)
        if (it.data) s += content(it);
    return s;
}

// pdf_bytes - the attachment of simple_base64.eml, as the generator made it.
std::string pdf_bytes() {
    std::string s = "%PDF-1.4\n% icap-milter test attachment\n";
    for (int i = 0; i < 4000; ++i) s += static_cast<char>((i * 7 + 3) % 256);
    return s;
}

// nested_multiparts - a message n multiparts deep with a leaf at the bottom.
std::string nested_multiparts(int n) {
    std::string m = "From: a@example.org\nSubject: deep\nMIME-Version: 1.0\n";
    for (int i = 0; i < n; ++i)
        m += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\n\n--b" +
             std::to_string(i) + "\n";
    m += "Content-Type: text/plain\n\nDEEPEST-LEAF\n";
    for (int i = n - 1; i >= 0; --i) m += "--b" + std::to_string(i) + "--\n";
    return crlf(m);
}

// nested_messages - n message/rfc822 parts inside each other.
std::string nested_messages(int n) {
    std::string m = "From: a@example.org\nSubject: deep\n";
    for (int i = 0; i < n; ++i) m += "Content-Type: message/rfc822\n\nSubject: level " + std::to_string(i) + "\n";
    m += "Content-Type: text/plain\n\nDEEPEST-LEAF\n";
    return crlf(m);
}

// many_parts - one multipart with n text children.
std::string many_parts(int n) {
    std::string m = "From: a@example.org\nContent-Type: multipart/mixed; boundary=\"p\"\n\n";
    for (int i = 0; i < n; ++i) m += "--p\nContent-Type: text/plain\n\npart " + std::to_string(i) + "\n";
    m += "--p--\n";
    return crlf(m);
}

// count_fds - descriptors open in this process.
int count_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (dirent* e = ::readdir(d))
            if (e->d_name[0] != '.') ++n;
        ::closedir(d);
    }
    return n;
}

// between - the text after the first `from` up to the next `to`.
std::string between(const std::string& s, const std::string& from, const std::string& to) {
    std::size_t a = s.find(from);
    REQUIRE(a != std::string::npos);
    a += from.size();
    std::size_t b = s.find(to, a);
    REQUIRE(b != std::string::npos);
    return s.substr(a, b - a);
}

// base64 - RFC 2045 base64 in 76-character CRLF lines.
std::string base64(std::string_view bytes) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t col = 0;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        std::uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
        if (i + 1 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
        if (i + 2 < bytes.size()) v |= static_cast<unsigned char>(bytes[i + 2]);
        out += abc[(v >> 18) & 63];
        out += abc[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? abc[v & 63] : '=';
        if ((col += 4) == 76) {
            out += "\r\n";
            col = 0;
        }
    }
    return out + "\r\n";
}

// unbase64 - decode base64, skipping line breaks (test data only).
std::string unbase64(std::string_view text) {
    std::string out;
    std::uint32_t bits = 0;
    int n = 0;
    for (char c : text) {
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '+'             ? 62
                : c == '/'             ? 63
                                       : -1;
        if (v < 0) continue;
        bits = (bits << 6) | static_cast<std::uint32_t>(v);
        if (++n == 4) {
            out += static_cast<char>(bits >> 16);
            out += static_cast<char>(bits >> 8);
            out += static_cast<char>(bits);
            n = 0;
            bits = 0;
        }
    }
    if (n == 2) out += static_cast<char>(bits >> 4);
    if (n == 3) {
        out += static_cast<char>(bits >> 10);
        out += static_cast<char>(bits >> 2);
    }
    return out;
}

// exe_bytes - a harmless stand-in for a Windows executable attachment.
std::string exe_bytes() {
    std::string s = "MZ\x90\x00\x03\x00This program cannot be run in DOS mode.\r\n";
    for (int i = 0; i < 300; ++i) s += static_cast<char>((i * 13 + 5) % 256);
    return s;
}

// exe_part - the exe as a base64 attachment named invoice.exe.
std::string exe_part() {
    return "Content-Type: application/octet-stream; name=\"invoice.exe\"\r\n"
           "Content-Disposition: attachment; filename=\"invoice.exe\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" +
           base64(exe_bytes());
}

// kControlPart - the PGP/MIME version part (RFC 3156 section 4).
const char* const kControlPart = "Content-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n";

// armour - the ASCII-armoured OpenPGP message of pgp_encrypted.eml.
std::string armour() {
    return "-----BEGIN PGP MESSAGE-----" +
           between(load("pgp_encrypted.eml"), "-----BEGIN PGP MESSAGE-----", "-----END PGP MESSAGE-----") +
           "-----END PGP MESSAGE-----\r\n";
}

// gpg_binary - the binary OpenPGP message of pgp_binary.eml.
std::string gpg_binary() {
    return unbase64(between(load("pgp_binary.eml"), "Content-Transfer-Encoding: base64\r\n\r\n", "--enc--"));
}

// octet_part - an application/octet-stream part with this (7bit) body.
std::string octet_part(const std::string& body) {
    return "Content-Type: application/octet-stream; name=\"encrypted.asc\"\r\n\r\n" + body;
}

// wrapped - a message whose body is a multipart/encrypted with these
// Content-Type parameters around these parts ("headers CRLF CRLF body").
std::string wrapped(const std::string& params, const std::vector<std::string>& parts) {
    std::string m = "From: a@example.org\r\nTo: b@example.net\r\nSubject: invoice\r\n"
                    "MIME-Version: 1.0\r\nContent-Type: multipart/encrypted; " +
                    params + "boundary=\"xyz\"\r\n\r\n";
    for (const auto& p : parts) m += "--xyz\r\n" + p + "\r\n";
    return m + "--xyz--\r\n";
}

// noted - some walk note mentions text.
bool noted(const WalkResult& r, const std::string& text) {
    for (const auto& w : r.warnings)
        if (w.find(text) != std::string::npos) return true;
    return false;
}

// smime_message - a message whose body is one pkcs7-mime part with this
// Content-Type and these decoded bytes.
std::string smime_message(const std::string& content_type, std::string_view der) {
    return "From: a@example.org\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: " + content_type +
           "\r\nContent-Disposition: attachment; filename=\"smime.p7m\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n" +
           base64(der);
}

// fixture_der - the decoded CMS blob of an S/MIME fixture.
std::string fixture_der(const std::string& name) {
    return unbase64(between(load(name), "Content-Transfer-Encoding: base64\r\n\r\n", "\r\n\r\n"));
}

const char* const kFixtures[] = {"simple_base64.eml",  "quoted_printable.eml", "nested_rfc822.eml",
                                 "alternative.eml",    "single_text.eml",      "pgp_encrypted.eml",
                                 "pgp_binary.eml",     "smime_enveloped.eml",  "smime_opaque_signed.eml",
                                 "smime_signed.eml"};

} // namespace

TEST_CASE("mime walker: multipart with a base64 attachment") {
    mime_init();
    WalkResult r = walk(load("simple_base64.eml"));
    CHECK_FALSE(r.limit_hit);
    REQUIRE(ids(r) == "preamble,1,2,3,epilogue");
    CHECK(content(item(r, "preamble")) == "This is a multi-part message in MIME format.");
    CHECK(item(r, "preamble").filename == "preamble.txt");
    CHECK(item(r, "epilogue").filename == "epilogue.txt");
    CHECK(content(item(r, "epilogue")).find("That was the epilogue.") == 0);

    const ScanItem& body = item(r, "1");
    CHECK(body.content_type == "text/plain");
    CHECK(body.transfer_encoding == "7bit");
    CHECK(body.filename.empty());
    CHECK(content(body) == "Please find the report attached.");

    const ScanItem& pdf = item(r, "2");
    CHECK(pdf.filename == "report.pdf");
    CHECK(pdf.content_type == "application/pdf");
    CHECK(pdf.transfer_encoding == "base64");
    CHECK(pdf.disposition == "attachment");
    CHECK(pdf.scannable);
    CHECK(pdf.size == 4039);
    CHECK(to_hex(pdf.sha256) == "f18ada2c67a555d5b7fcffac040d676f2465510f892b1501888cba211a73ebe4");
    CHECK(content(pdf) == pdf_bytes());

    // RFC 2231 filename* wins over the RFC 2047 name; "BASE64" is lower-cased.
    const ScanItem& txt = item(r, "3");
    CHECK(txt.filename == "r\xc3\xa9sum\xc3\xa9 2024.txt");
    CHECK(txt.transfer_encoding == "base64");
    CHECK(content(txt) == "r\xc3\xa9sum\xc3\xa9\n");
    CHECK(to_hex(txt.sha256) == "a8bd3d9cf962c142f7cc3505d88d864b6ae42cf089f3d57de25d771d35f6a0b2");

    CHECK(r.preamble == "This is a multi-part message in MIME format.");
    CHECK(r.epilogue.find("That was the epilogue.") != std::string::npos);
}

TEST_CASE("mime walker: quoted-printable body (LF line ends) is decoded") {
    WalkResult r = walk(load("quoted_printable.eml"));
    REQUIRE(ids(r) == "1");
    const ScanItem& it = item(r, "1");
    CHECK(it.content_type == "text/html");
    CHECK(it.transfer_encoding == "quoted-printable");
    CHECK(content(it) == "<p style=\"color:red\">Caf\xc3\xa9 softbreak</p>\n");
    CHECK(to_hex(it.sha256) == sha(content(it)));
}

TEST_CASE("mime walker: nested message/rfc822 with an attachment inside") {
    WalkResult r = walk(load("nested_rfc822.eml"));
    REQUIRE(ids(r) == "1,2.1,2.2,3");
    CHECK(content(item(r, "2.1")) == "inner body");
    const ScanItem& zip = item(r, "2.2");
    CHECK(zip.filename == "inner.zip");
    CHECK(zip.content_type == "application/zip");
    CHECK(zip.size == 785);
    CHECK(to_hex(zip.sha256) == "92538cf3c9aaafa959967fc063969ed33df426debbbb2753b93b80574facc952");
    CHECK(item(r, "3").filename == "after.bin");
    CHECK(content(item(r, "3")) == "after");
}

TEST_CASE("mime walker: multipart/alternative yields every alternative") {
    WalkResult r = walk(load("alternative.eml"));
    REQUIRE(ids(r) == "1,2.1,2.2");
    CHECK(item(r, "1").content_type == "text/plain");
    CHECK(content(item(r, "1")) == "Plain version.");
    CHECK(item(r, "2.1").content_type == "text/html");
    const ScanItem& png = item(r, "2.2");
    CHECK(png.filename == "logo.png");
    CHECK(png.disposition == "inline");
    CHECK(to_hex(png.sha256) == "eb713fcbb6669fffe18dc2d49912999272d784785553abd87b0a5bc67385c74d");
}

TEST_CASE("mime walker: single-part text message is part 1") {
    WalkResult r = walk(load("single_text.eml"));
    REQUIRE(ids(r) == "1");
    const ScanItem& it = item(r, "1");
    CHECK(it.content_type == "text/plain"); // the RFC 2045 default
    CHECK(it.transfer_encoding == "7bit");
    CHECK(it.disposition.empty());
    CHECK(content(it) == "Just one line of text.\r\n");
    CHECK(r.preamble.empty());
}

TEST_CASE("mime walker: genuine PGP/MIME (armour): only the OpenPGP message is unscannable") {
    std::string raw = load("pgp_encrypted.eml");
    WalkResult r = walk(raw);
    REQUIRE(ids(r) == "1,2.1,2.2");
    CHECK(item(r, "1").scannable);
    const ScanItem& control = item(r, "2.1");
    CHECK(control.content_type == "application/pgp-encrypted");
    CHECK(control.scannable); // harmless, and scanning it costs nothing
    CHECK(content(control).find("Version: 1") != std::string::npos);
    const ScanItem& enc = item(r, "2.2");
    CHECK(enc.content_type == "application/octet-stream");
    CHECK(enc.filename == "encrypted.asc");
    CHECK_FALSE(enc.scannable);
    CHECK(enc.unscannable_reason == "encrypted (PGP/MIME)");
    CHECK_FALSE(enc.data);
    // Size and hash cover the part's content: the armour block as sent.
    std::string body = between(raw, "filename=\"encrypted.asc\"\r\n\r\n", "\r\n--enc--");
    CHECK(enc.size == body.size());
    CHECK(to_hex(enc.sha256) == sha(body));
    CHECK_FALSE(noted(r, "not PGP/MIME"));
}

TEST_CASE("mime walker: genuine PGP/MIME (binary packets in base64): only the ciphertext is unscannable") {
    WalkResult r = walk(load("pgp_binary.eml"));
    REQUIRE(ids(r) == "1,2");
    CHECK(item(r, "1").scannable);
    const ScanItem& enc = item(r, "2");
    CHECK_FALSE(enc.scannable);
    CHECK(enc.unscannable_reason == "encrypted (PGP/MIME)");
    std::string bin = gpg_binary();
    REQUIRE(bin.size() > 100);
    CHECK(enc.size == bin.size());
    CHECK(to_hex(enc.sha256) == sha(bin));
}

TEST_CASE("mime walker: a multipart/encrypted that is not PGP/MIME hides nothing") {
    auto all_scanned = [](const WalkResult& r, std::size_t n) {
        REQUIRE(r.items.size() == n);
        for (const auto& it : r.items) {
            CAPTURE(it.part_id);
            CHECK(it.scannable);
            CHECK(it.data);
        }
        CHECK(noted(r, "multipart/encrypted that is not PGP/MIME: scanned as multipart"));
    };
    std::string text = "Content-Type: text/plain\r\n\r\nPlease see the invoice.\r\n";

    SUBCASE("no protocol: the reported case, a text part and a base64 invoice.exe") {
        WalkResult r = walk(wrapped("", {text, exe_part()}));
        all_scanned(r, 2);
        CHECK(ids(r) == "1,2");
        CHECK(item(r, "2").filename == "invoice.exe");
        CHECK(content(item(r, "2")) == exe_bytes());
    }
    SUBCASE("wrong protocol") {
        all_scanned(walk(wrapped("protocol=\"application/pkcs7-mime\"; ", {kControlPart, exe_part()})), 2);
    }
    SUBCASE("right protocol, but the second part is a plain base64 exe") {
        WalkResult r = walk(wrapped("protocol=\"application/pgp-encrypted\"; ", {kControlPart, exe_part()}));
        all_scanned(r, 2);
        CHECK(content(item(r, "2")) == exe_bytes());
    }
    SUBCASE("right protocol and real ciphertext, but a third part") {
        WalkResult r = walk(wrapped("protocol=\"application/pgp-encrypted\"; ",
                                    {kControlPart, octet_part(armour()), exe_part()}));
        all_scanned(r, 3);
        CHECK(content(item(r, "3")) == exe_bytes());
    }
    SUBCASE("the exe first, the ciphertext second") {
        all_scanned(walk(wrapped("protocol=\"application/pgp-encrypted\"; ",
                                 {exe_part(), octet_part(armour())})),
                    2);
    }
    SUBCASE("control part without Version: 1") {
        all_scanned(walk(wrapped("protocol=\"application/pgp-encrypted\"; ",
                                 {"Content-Type: application/pgp-encrypted\r\n\r\nVersion: 2\r\n",
                                  octet_part(armour())})),
                    2);
    }
    SUBCASE("ciphertext part of another type") {
        all_scanned(walk(wrapped("protocol=\"application/pgp-encrypted\"; ",
                                 {kControlPart, "Content-Type: application/x-msdownload\r\n\r\n" + armour()})),
                    2);
    }
    SUBCASE("text after the armour") {
        all_scanned(walk(wrapped("protocol=\"application/pgp-encrypted\"; ",
                                 {kControlPart, octet_part(armour() + "\r\nsee also http://x.example/a.exe\r\n")})),
                    2);
    }
    SUBCASE("text before the armour") {
        all_scanned(walk(wrapped("protocol=\"application/pgp-encrypted\"; ",
                                 {kControlPart, octet_part("Hello\r\n" + armour())})),
                    2);
    }
    SUBCASE("binary ciphertext cut short") {
        std::string bin = gpg_binary();
        std::string part = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                           base64(bin.substr(0, bin.size() - 10));
        all_scanned(walk(wrapped("protocol=\"application/pgp-encrypted\"; ", {kControlPart, part})), 2);
    }
    SUBCASE("binary ciphertext with an exe appended") {
        std::string part = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                           base64(gpg_binary() + exe_bytes());
        all_scanned(walk(wrapped("protocol=\"application/pgp-encrypted\"; ", {kControlPart, part})), 2);
    }
    SUBCASE("the wrapper nested inside multipart/mixed") {
        std::string m = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=\"out\"\r\n\r\n"
                        "--out\r\n" + text + "--out\r\nContent-Type: multipart/encrypted; boundary=\"xyz\"\r\n\r\n"
                        "--xyz\r\n" + text + "\r\n--xyz\r\n" + exe_part() + "\r\n--xyz--\r\n--out--\r\n";
        WalkResult r = walk(m);
        all_scanned(r, 3);
        CHECK(ids(r) == "1,2.1,2.2");
        CHECK(content(item(r, "2.2")) == exe_bytes());
    }
}

TEST_CASE("mime walker: genuine PGP/MIME built in the test, armour and binary, LF too") {
    std::string params = "protocol=\"application/pgp-encrypted\"; ";
    std::string bin_part = "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
                           base64(gpg_binary());
    for (const std::string& cipher : {octet_part(armour()), bin_part}) {
        std::string m = wrapped(params, {kControlPart, cipher});
        std::string lf;
        for (char c : m)
            if (c != '\r') lf += c;
        for (const std::string& raw : {m, lf}) {
            WalkResult r = walk(raw);
            REQUIRE(ids(r) == "1,2");
            CHECK(item(r, "1").scannable);
            CHECK_FALSE(item(r, "2").scannable);
            CHECK(item(r, "2").unscannable_reason == "encrypted (PGP/MIME)");
        }
    }
}

TEST_CASE("mime walker: genuine S/MIME enveloped data is unscannable but hashed") {
    WalkResult r = walk(load("smime_enveloped.eml"));
    REQUIRE(ids(r) == "1");
    const ScanItem& it = item(r, "1");
    CHECK(it.content_type == "application/pkcs7-mime");
    CHECK(it.filename == "smime.p7m");
    CHECK_FALSE(it.scannable);
    CHECK(it.unscannable_reason == "encrypted (S/MIME)");
    CHECK_FALSE(it.data);
    std::string der = fixture_der("smime_enveloped.eml");
    CHECK(it.size == der.size());
    CHECK(to_hex(it.sha256) == sha(der));
}

TEST_CASE("mime walker: pkcs7-mime is judged by its bytes, not by its label") {
    auto one = [](const std::string& ct, std::string_view der) {
        WalkResult r = walk(smime_message(ct, der));
        REQUIRE(r.items.size() >= 1);
        return r;
    };
    std::string enveloped = fixture_der("smime_enveloped.eml");
    std::string garbage = exe_bytes();

    SUBCASE("enveloped-data label on garbage: scanned as a part") {
        for (std::string ct : {"application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
                               "application/x-pkcs7-mime; smime-type=enveloped-data",
                               "application/pkcs7-mime; name=smime.p7m",
                               "application/pkcs7-mime; smime-type=authEnveloped-data"}) {
            CAPTURE(ct);
            WalkResult r = one(ct, garbage);
            REQUIRE(r.items.size() == 1);
            CHECK(r.items[0].scannable);
            CHECK(content(r.items[0]) == garbage);
            CHECK(noted(r, "application/pkcs7-mime that is not CMS: scanned as a part"));
        }
    }
    SUBCASE("a DER header of envelopedData in front of an exe: scanned") {
        // SEQUENCE, OID 1.2.840.113549.1.7.3, [0]: the first bytes are right,
        // the structure is not.
        std::string fake = std::string("\x30\x82\x01\x40\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03\xa0\x82\x01\x31", 19) +
                           garbage;
        WalkResult r = one("application/pkcs7-mime; smime-type=enveloped-data", fake);
        CHECK(r.items[0].scannable);
        CHECK(content(r.items[0]) == fake);
    }
    SUBCASE("genuine envelopedData with an exe appended: scanned") {
        WalkResult r = one("application/pkcs7-mime; smime-type=enveloped-data", enveloped + garbage);
        CHECK(r.items[0].scannable);
    }
    SUBCASE("genuine envelopedData under other labels is still encrypted") {
        for (std::string ct : {"application/x-pkcs7-mime; name=smime.p7m", "application/pkcs7-mime; smime-type=signed-data"}) {
            CAPTURE(ct);
            WalkResult r = one(ct, enveloped);
            REQUIRE(r.items.size() == 1);
            CHECK_FALSE(r.items[0].scannable);
            CHECK(r.items[0].unscannable_reason == "encrypted (S/MIME)");
        }
    }
    SUBCASE("certs-only and unknown bytes stay scannable") {
        WalkResult r = one("application/pkcs7-mime; smime-type=certs-only", std::string_view("\x00\x01\x02\x03\x04\x05", 6));
        CHECK(r.items[0].scannable);
        CHECK(r.items[0].size == 6);
    }
}

TEST_CASE("mime walker: opaque S/MIME signed data is scanned and its content walked") {
    WalkResult r = walk(load("smime_opaque_signed.eml"));
    REQUIRE(ids(r) == "1,1.1,1.2");
    const ScanItem& blob = item(r, "1");
    CHECK(blob.content_type == "application/pkcs7-mime");
    CHECK(blob.scannable);
    CHECK(blob.unscannable_reason.empty());
    CHECK(content(blob) == fixture_der("smime_opaque_signed.eml"));
    CHECK(content(item(r, "1.1")).find("Signed inside the CMS blob.") == 0);
    CHECK(item(r, "1.2").filename == "inner.bin");
    CHECK(content(item(r, "1.2")) == "INNER-ATTACHMENT-BYTES");
    for (const auto& it : r.items) CHECK(it.scannable);
}

TEST_CASE("mime walker: encryption checks keep the depth and part limits") {
    WalkLimits lim;
    lim.max_parts = 2; // the wrapper and one child
    WalkResult r = walk(wrapped("", {"Content-Type: text/plain\r\n\r\nx\r\n", exe_part()}), lim);
    CHECK(r.limit_hit);
    CHECK(r.items.back().part_id == "0");
    lim = {};
    lim.max_depth = 0; // no room for the content inside signedData
    WalkResult s = walk(load("smime_opaque_signed.eml"), lim);
    CHECK(s.limit_hit);
    CHECK(s.items.back().part_id == "0");
}

TEST_CASE("mime walker: multipart/signed is descended, signature scanned too") {
    WalkResult r = walk(load("smime_signed.eml"));
    REQUIRE(ids(r) == "preamble,1.1,1.2,2");
    for (const auto& it : r.items) CHECK(it.scannable);
    CHECK(content(item(r, "1.2")) == "signed attachment bytes");
    CHECK(item(r, "2").content_type == "application/pkcs7-signature");
    CHECK(item(r, "2").size == 700);
}

TEST_CASE("mime walker: oversize part is unscannable, keeps size and hash") {
    WalkLimits lim;
    lim.max_scan_size = 1000;
    WalkResult r = walk(load("simple_base64.eml"), lim);
    REQUIRE(ids(r) == "preamble,1,2,3,epilogue");
    const ScanItem& pdf = item(r, "2");
    CHECK_FALSE(pdf.scannable);
    CHECK(pdf.unscannable_reason == "size limit (4039 > 1000 bytes)");
    CHECK_FALSE(pdf.data);
    CHECK(pdf.size == 4039);
    CHECK(to_hex(pdf.sha256) == "f18ada2c67a555d5b7fcffac040d676f2465510f892b1501888cba211a73ebe4");
    CHECK(item(r, "1").scannable);
    CHECK(item(r, "3").scannable);

    lim.max_scan_size = 4039; // the limit itself is still scannable
    CHECK(item(walk(load("simple_base64.eml"), lim), "2").scannable);
}

TEST_CASE("mime walker: depth limit falls back to the whole raw message") {
    WalkLimits lim;
    lim.max_depth = 5;
    WalkResult ok = walk(nested_multiparts(5), lim);
    CHECK_FALSE(ok.limit_hit);
    REQUIRE(ok.items.size() == 1);
    CHECK(ok.items[0].part_id == "1.1.1.1.1");
    CHECK(content(ok.items[0]) == "DEEPEST-LEAF");

    std::string raw = nested_multiparts(6);
    WalkResult r = walk(raw, lim);
    CHECK(r.limit_hit);
    CHECK(r.limit_reason.find("depth") != std::string::npos);
    REQUIRE_FALSE(r.items.empty());
    const ScanItem& whole = r.items.back();
    CHECK(whole.part_id == "0");
    CHECK(whole.filename == "message.eml");
    CHECK(whole.content_type == "message/rfc822");
    CHECK(whole.scannable);
    CHECK(content(whole) == raw);

    // message/rfc822 nesting counts as depth too
    WalkResult m = walk(nested_messages(8), lim);
    CHECK(m.limit_hit);
    CHECK(m.items.back().part_id == "0");
    CHECK_FALSE(walk(nested_messages(4), lim).limit_hit);
}

TEST_CASE("mime walker: part count limit falls back and stops walking") {
    WalkLimits lim;
    lim.max_parts = 10;
    // a container plus 9 leaves is exactly 10 parts
    WalkResult ok = walk(many_parts(9), lim);
    CHECK_FALSE(ok.limit_hit);
    CHECK(ok.items.size() == 9);

    std::string raw = many_parts(30);
    WalkResult r = walk(raw, lim);
    CHECK(r.limit_hit);
    CHECK(r.limit_reason.find("part count") != std::string::npos);
    CHECK(r.items.size() <= 10); // stopped: 9 leaves at most plus the fallback
    CHECK(r.items.back().part_id == "0");
    CHECK(content(r.items.back()) == raw);
}

TEST_CASE("mime walker: a flood of delimiter lines is refused before GMime parses it") {
    WalkLimits lim;
    lim.max_parts = 10;
    std::string raw = crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=b\n\n");
    for (int i = 0; i < 2000; ++i) raw += "--b\r\n";
    WalkResult r = walk(raw, lim);
    CHECK(r.limit_hit);
    CHECK(r.limit_reason.find("boundary") != std::string::npos);
    REQUIRE(r.items.size() == 1); // nothing was walked, only the fallback
    CHECK(r.items[0].part_id == "0");
    CHECK(r.items[0].size == raw.size());
}

TEST_CASE("mime walker: a flood of header lines is refused before GMime parses it") {
    WalkLimits lim;
    lim.max_parts = 10; // header budget: 50 per part + 1000 = 1500
    auto flood = [](const std::string& line, int n) {
        std::string raw = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n";
        for (int i = 0; i < n; ++i) raw += line;
        return raw + "\r\nbody\r\n--b--\r\n";
    };
    for (const std::string line : {"X: y\r\n", "X-Long-Name-Header :y\r\n"}) {
        CAPTURE(line);
        WalkResult r = walk(flood(line, 1600), lim);
        CHECK(r.limit_hit);
        CHECK(r.limit_reason.find("header limit") != std::string::npos);
        REQUIRE(r.items.size() == 1);
        CHECK(r.items[0].part_id == "0");
        CHECK_FALSE(walk(flood(line, 1400), lim).limit_hit);
    }
    // Body lines without a colon, or with text before it, are not headers.
    std::string text = "From: a@example.org\r\n\r\n";
    for (int i = 0; i < 5000; ++i) text += "plain words here: and more\r\nSGVsbG8gV29ybGQ=\r\n";
    CHECK_FALSE(walk(text, lim).limit_hit);
}

TEST_CASE("mime walker: whole-message fallback over the size limit is unscannable") {
    WalkLimits lim;
    lim.max_depth = 2;
    std::string raw = nested_multiparts(4);
    lim.max_scan_size = raw.size() - 1;
    WalkResult r = walk(raw, lim);
    REQUIRE(r.limit_hit);
    const ScanItem& whole = r.items.back();
    CHECK(whole.part_id == "0");
    CHECK_FALSE(whole.scannable);
    CHECK(whole.unscannable_reason.rfind("size limit (", 0) == 0);
    CHECK_FALSE(whole.data);
    CHECK(whole.size == raw.size());
}

TEST_CASE("mime walker: part 0 shares the milter's spool instead of copying it") {
    WalkLimits lim;
    lim.whole_message = WholeMessage::Always;
    const std::string raw = crlf("From: a@example.org\nSubject: s\nMIME-Version: 1.0\n"
                                 "Content-Type: text/plain\n\nhello\n");
    auto spool = std::make_shared<Spool>("/tmp", 1u << 20);
    spool->append(raw);
    WalkResult shared = walk_message(std::shared_ptr<const Spool>(spool), lim);
    WalkResult copied = walk_message(*spool, lim);
    REQUIRE(shared.items.size() == copied.items.size());
    const ScanItem& whole = shared.items.back();
    REQUIRE(whole.part_id == "0");
    CHECK(whole.data.get() == spool.get()); // the same spool, not a copy
    CHECK(copied.items.back().data.get() != spool.get());
    CHECK(content(whole) == raw);
    CHECK(content(copied.items.back()) == raw);
    CHECK(walk_report(shared) == walk_report(copied));
}

TEST_CASE("mime walker: base64-encoded message/rfc822 is decoded and walked") {
    std::string inner = crlf("Subject: inner\nContent-Type: multipart/mixed; boundary=i\n\n"
                             "--i\nContent-Type: text/plain\n\nhidden text\n"
                             "--i\nContent-Type: application/octet-stream; name=\"x.exe\"\n\nMZpayload\n--i--\n");
    // base64 of inner, produced here so the test states its own input
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string b64;
    for (std::size_t i = 0; i < inner.size(); i += 3) {
        unsigned v = static_cast<unsigned char>(inner[i]) << 16;
        if (i + 1 < inner.size()) v |= static_cast<unsigned char>(inner[i + 1]) << 8;
        if (i + 2 < inner.size()) v |= static_cast<unsigned char>(inner[i + 2]);
        b64 += tbl[(v >> 18) & 63];
        b64 += tbl[(v >> 12) & 63];
        b64 += i + 1 < inner.size() ? tbl[(v >> 6) & 63] : '=';
        b64 += i + 2 < inner.size() ? tbl[v & 63] : '=';
        if ((i / 3) % 19 == 18) b64 += "\r\n";
    }
    std::string raw = crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=o\n\n"
                           "--o\nContent-Type: text/plain\n\nouter\n"
                           "--o\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n") +
                      b64 + crlf("\n--o--\n");
    WalkResult r = walk(raw);
    REQUIRE(ids(r) == "1,2.1,2.2");
    CHECK(content(item(r, "2.1")) == "hidden text");
    CHECK(item(r, "2.2").filename == "x.exe");
    CHECK(content(item(r, "2.2")) == "MZpayload");
}

TEST_CASE("mime walker: a base64 message/rfc822 that is no message is scanned decoded") {
    // "MZ" bytes with no header structure: GMime drops them as bad header
    // lines, so the decoded bytes themselves must become an item.
    std::string raw = crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=o\n\n"
                           "--o\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n"
                           "TVpQRS1QQVlMT0FELUJZVEVTCgpib2R5Cg==\n--o--\n");
    WalkResult r = walk(raw);
    bool found = false;
    for (const auto& it : r.items)
        if (it.part_id == "1" && it.data && content(it) == "MZPE-PAYLOAD-BYTES\n\nbody\n") found = true;
    CHECK(found);
}

TEST_CASE("mime walker: message/global is walked like message/rfc822") {
    std::string raw = crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=o\n\n"
                           "--o\nContent-Type: message/global\n\n"
                           "Subject: intl\nContent-Type: multipart/mixed; boundary=g\n\n"
                           "--g\nContent-Type: text/plain\n\nglobal body\n"
                           "--g\nContent-Type: application/pdf; name=g.pdf\n"
                           "Content-Transfer-Encoding: base64\n\nJVBERg==\n--g--\n--o--\n");
    WalkResult r = walk(raw);
    REQUIRE(ids(r) == "1.1,1.2");
    CHECK(content(item(r, "1.1")) == "global body");
    CHECK(content(item(r, "1.2")) == "%PDF");
}

TEST_CASE("mime walker: uuencoded part is decoded") {
    std::string raw = crlf("From: a@example.org\nContent-Type: application/octet-stream; name=a.bin\n"
                           "Content-Transfer-Encoding: x-uuencode\n\n"
                           "begin 644 a.bin\n#86)C\n`\nend\n");
    WalkResult r = walk(raw);
    // Not one of RFC 2045's tokens: suspect, so the raw message is part 0 too.
    REQUIRE(ids(r) == "1,0");
    CHECK(r.suspects.size() == 1);
    CHECK(item(r, "1").transfer_encoding == "x-uuencode"); // GMime's canonical name
    CHECK(content(item(r, "1")) == "abc");
}

TEST_CASE("mime walker: sloppy Content-Transfer-Encoding values are decoded leniently") {
    for (const char* cte : {"base64;", "\"base64\"", "base64(comment)", " (c) BASE64 ", "base64,7bit"}) {
        CAPTURE(cte);
        std::string raw = "From: a@example.org\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Transfer-Encoding: " + std::string(cte) + "\r\n\r\nSGVsbG8gV29ybGQ=\r\n";
        WalkResult r = walk(raw);
        // Comments are allowed around the token; anything else makes it
        // non-standard (suspect), so the raw message is part 0 as well.
        bool standard = std::string_view(cte).find_first_of(";\",") == std::string_view::npos;
        REQUIRE(r.items.size() == (standard ? 1u : 2u));
        CHECK(r.suspects.empty() == standard);
        CHECK(content(r.items[0]) == "Hello World");
        CHECK(r.items[0].transfer_encoding == "base64");
    }
    // an unknown token stays undecoded and is reported as written
    WalkResult r = walk("Content-Transfer-Encoding: X-Custom\r\n\r\nSGVsbG8=\r\n");
    CHECK(content(r.items[0]) == "SGVsbG8=\r\n");
    CHECK(r.items[0].transfer_encoding == "x-custom");
}

TEST_CASE("mime walker: malformed multipart without closing boundary") {
    std::string raw = crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=x\n\n"
                           "--x\nContent-Type: text/plain\n\nfirst\n"
                           "--x\nContent-Type: application/octet-stream; name=t.bin\n"
                           "Content-Transfer-Encoding: base64\n\nVHJ1bmNhdGVkIG1haWw=\n");
    WalkResult r = walk(raw);
    // Every reader sees the last part run to the end; the raw message is
    // scanned too (suspect), and the message is not ambiguous.
    REQUIRE(ids(r) == "1,2,0");
    CHECK_FALSE(r.ambiguous());
    CHECK_FALSE(r.suspects.empty());
    CHECK(content(item(r, "1")) == "first");
    CHECK(content(item(r, "2")) == "Truncated mail");
}

TEST_CASE("mime walker: garbage and truncated base64 do not crash") {
    std::string raw = crlf("From: a@example.org\nContent-Type: multipart/mixed; boundary=x\n\n"
                           "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                           "!!!@@@ ### %%%\n\x01\x02\x7f\nSGVsbG8=\n"
                           "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                           "SGVsbG8gV29ybGQ\n--x--\n");
    WalkResult r = walk(raw);
    // Junk in base64 is skipped by some readers and ends the data for
    // others: ambiguous, with the raw message scanned for a virus.
    REQUIRE(ids(r) == "1,2,0");
    CHECK(r.ambiguous());
    CHECK(r.ambiguity().find("part 1: base64 holding") == 0);
    CHECK(content(item(r, "1")).find("Hello") != std::string::npos);
    CHECK(content(item(r, "2")) == "Hello World"); // unpadded: every byte decoded
}

TEST_CASE("mime walker: 8bit junk, NULs and bad header lines are tolerated") {
    std::string junk;
    for (int i = 0; i < 256; ++i) junk += static_cast<char>(i == '\n' || i == '\r' ? 'x' : i);
    using namespace std::string_literals;
    std::string raw = "From: a@example.org\r\nX-Junk: \xff\xfe\x80\x00zz\r\nthis line has no colon\r\n"
                      "Subject: =?bogus?Q?=ZZ?=\r\n\r\n"s;
    REQUIRE(raw.find("zz") != std::string::npos);
    raw.append(std::string(1, '\0'));
    raw += junk + "\r\nend\r\n";
    WalkResult r = walk(raw);
    REQUIRE_FALSE(r.items.empty());
    // The body (whatever GMime decided the headers were) is covered.
    CHECK(all_content(r).find(junk) != std::string::npos);
}

TEST_CASE("mime walker: multipart without a boundary parameter still covers the body") {
    std::string raw = crlf("From: a@example.org\nContent-Type: multipart/mixed\n\n"
                           "--x\nContent-Type: text/plain\n\nMARKER-NO-BOUNDARY\n--x--\n");
    WalkResult r = walk(raw);
    // GMime finds no part, so the whole body is the multipart's prologue:
    // the multipart itself becomes the item that carries those bytes (and
    // being ambiguous MIME, the raw message is part "0" as well).
    REQUIRE(ids(r) == "1,0");
    CHECK(r.ambiguous());
    CHECK_FALSE(r.limit_hit);
    CHECK(item(r, "1").content_type == "multipart/mixed");
    CHECK(content(item(r, "1")).find("MARKER-NO-BOUNDARY") != std::string::npos);

    // same for a nested multipart whose boundary never occurs
    std::string nested = crlf("Content-Type: multipart/mixed; boundary=o\n\n"
                              "--o\nContent-Type: multipart/related; boundary=never\n\n"
                              "NESTED-MARKER\n--o--\n");
    WalkResult n = walk(nested);
    REQUIRE(n.items.size() >= 1);
    CHECK(n.items[0].part_id == "1");
    CHECK(content(item(n, "1")).find("NESTED-MARKER") != std::string::npos);
}

TEST_CASE("mime walker: ambiguous MIME adds the raw message as a second opinion") {
    // Two different Content-Types: GMime takes one, a mail client may take
    // the other, so the scanner also gets the raw message to judge.
    std::string conflict = "From: a@example.org\r\nContent-Type: text/plain\r\n"
                           "Content-Type: application/x-msdownload; name=a.exe\r\n"
                           "Content-Transfer-Encoding: base64\r\n\r\nTVo=\r\n";
    WalkResult r = walk(conflict);
    CHECK(r.ambiguous());
    CHECK_FALSE(r.limit_hit);
    REQUIRE(ids(r) == "1,0");
    CHECK(content(item(r, "0")) == conflict);
    REQUIRE_FALSE(r.warnings.empty());
    CHECK(r.warnings[0].find("conflicting header") != std::string::npos);

    // Header lines without a colon vanish in GMime; the raw copy keeps them.
    std::string hidden = "From: a@example.org\r\nX-First: a\r\nHIDDEN-PAYLOAD-LINE\r\n\r\nbody\r\n";
    WalkResult h = walk(hidden);
    CHECK(h.ambiguous());
    CHECK(all_content(h).find("HIDDEN-PAYLOAD-LINE") != std::string::npos);

    // Too big for a rescan: no unscannable item appears, only a warning.
    WalkLimits lim;
    lim.max_scan_size = conflict.size() - 1;
    WalkResult big = walk(conflict, lim);
    CHECK(big.ambiguous());
    CHECK(ids(big) == "1");
    CHECK(big.warnings.back().find("too large") != std::string::npos);

    // A flood of warnings is kept short.
    std::string flood = "From: a@example.org\r\n";
    for (int i = 0; i < 500; ++i) flood += "no colon here\r\n";
    WalkResult f = walk(flood + "\r\nbody\r\n");
    CHECK(f.warnings.size() <= 17);
}

TEST_CASE("mime walker: headers without a body give one empty item") {
    WalkResult r = walk("From: a@example.org\r\nSubject: nothing\r\n");
    // GMime calls it truncated (no blank line): suspect, raw copy as part 0.
    REQUIRE(ids(r) == "1,0");
    CHECK(r.items[0].size == 0);
    CHECK(r.items[0].scannable);
    CHECK(to_hex(r.items[0].sha256) == sha(""));
    REQUIRE(r.items[0].data);
    CHECK(r.items[0].data->size() == 0);

    // an empty leaf inside a multipart is still an item
    WalkResult e = walk(crlf("Content-Type: multipart/mixed; boundary=e\n\n--e\n\n--e\n"
                             "Content-Type: text/plain\n\nx\n--e--\n"));
    REQUIRE(ids(e) == "1,2");
    CHECK(item(e, "1").size == 0);
}

TEST_CASE("mime walker: CRLF and LF forms give the same parts and attachment hashes") {
    std::string lf = load("nested_rfc822.eml");
    std::string unix_form;
    for (char c : lf)
        if (c != '\r') unix_form += c;
    REQUIRE(unix_form.size() < lf.size());
    WalkResult a = walk(lf);
    WalkResult b = walk(unix_form);
    REQUIRE(ids(a) == ids(b));
    for (std::size_t i = 0; i < a.items.size(); ++i) {
        CHECK(a.items[i].filename == b.items[i].filename);
        CHECK(a.items[i].content_type == b.items[i].content_type);
    }
    // base64 decodes to the same bytes whatever the line ends
    CHECK(item(a, "2.2").sha256 == item(b, "2.2").sha256);
    CHECK(item(a, "3").sha256 == item(b, "3").sha256);
}

TEST_CASE("mime walker: unparsable input throws runtime_error") {
    CHECK_THROWS_AS(walk(""), std::runtime_error);
    std::string noise;
    for (int i = 0; i < 3000; ++i) noise += static_cast<char>((i * 73 + 11) % 251 + 1);
    // Whatever GMime makes of noise, it must not crash; if it cannot make
    // a message, the contract is runtime_error.
    try {
        WalkResult r = walk(noise);
        CHECK_FALSE(r.items.empty());
    } catch (const std::runtime_error&) {
    }
}

TEST_CASE("mime walker: on-disk and in-memory spools give identical results") {
    for (const char* name : kFixtures) {
        CAPTURE(name);
        std::string raw = load(name);
        WalkResult mem = walk(raw, {}, 1u << 20);
        WalkResult disk = walk(raw, {}, 0);
        REQUIRE(ids(mem) == ids(disk));
        for (std::size_t i = 0; i < mem.items.size(); ++i) {
            CHECK(mem.items[i].sha256 == disk.items[i].sha256);
            CHECK(mem.items[i].size == disk.items[i].size);
            CHECK(mem.items[i].filename == disk.items[i].filename);
        }
        CHECK(mem.hashable()); // well-formed fixtures: one reading, nothing ambiguous or suspect
        CHECK_FALSE(mem.limit_hit);
        CHECK(mem.preamble == disk.preamble);
        CHECK(mem.epilogue == disk.epilogue);
    }
}

TEST_CASE("mime walker: part spools are nameless temp files and no fd leaks") {
    char tmpl[] = "/tmp/icapm-mime-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    std::string dir = tmpl;
    int before = count_fds();
    {
        WalkLimits lim;
        lim.temp_dir = dir;
        lim.memory_limit = 0; // every non-empty part goes to a file
        auto spool = spool_of(load("simple_base64.eml"), 0, dir);
        WalkResult r = walk_message(*spool, lim);
        REQUIRE(r.items.size() == 5); // preamble, 1, 2, 3, epilogue
        CHECK(item(r, "2").data->on_disk());
        CHECK(content(item(r, "2")) == pdf_bytes());
        int entries = 0;
        if (DIR* d = ::opendir(dir.c_str())) {
            while (dirent* e = ::readdir(d))
                if (e->d_name[0] != '.') ++entries;
            ::closedir(d);
        }
        CHECK(entries == 0);
    }
    CHECK(count_fds() == before); // GMime closed its dup, items closed theirs
    CHECK(::rmdir(dir.c_str()) == 0);
}

TEST_CASE("mime walker: total memory budget sends later parts to disk") {
    std::string raw = "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=m\r\n\r\n";
    for (int i = 0; i < 5; ++i) raw += "--m\r\nContent-Type: text/plain\r\n\r\n" + std::string(4000, 'a' + i) + "\r\n";
    raw += "--m--\r\n";
    WalkLimits lim;
    lim.memory_limit = 1u << 20;
    lim.total_memory_limit = 10000;
    WalkResult r = walk(raw, lim);
    REQUIRE(r.items.size() == 5);
    CHECK_FALSE(r.items[0].data->on_disk());
    CHECK_FALSE(r.items[1].data->on_disk());
    CHECK(r.items[2].data->on_disk()); // 8000 used, 2000 left < 4000
    CHECK(r.items[4].data->on_disk());
    CHECK(content(r.items[4]) == std::string(4000, 'e'));
}

TEST_CASE("mime walker: messages walked concurrently on several threads") {
    mime_init();
    std::string raw = load("nested_rfc822.eml");
    std::string raw2 = load("simple_base64.eml");
    WalkResult ref = walk(raw);
    WalkResult ref2 = walk(raw2);
    constexpr int kThreads = 4;
    std::vector<int> mismatches(kThreads, 0);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 25; ++i) {
                bool second = (i + t) % 2 == 1;
                WalkLimits lim;
                lim.memory_limit = (i % 3 == 0) ? 0 : 1u << 20;
                auto spool = spool_of(second ? raw2 : raw, (i % 2) ? 0 : 1u << 20);
                WalkResult r = walk_message(*spool, lim);
                const WalkResult& want = second ? ref2 : ref;
                if (r.items.size() != want.items.size()) {
                    ++mismatches[t];
                    continue;
                }
                for (std::size_t k = 0; k < r.items.size(); ++k)
                    if (r.items[k].sha256 != want.items[k].sha256 ||
                        r.items[k].part_id != want.items[k].part_id ||
                        r.items[k].filename != want.items[k].filename)
                        ++mismatches[t];
            }
        });
    }
    for (auto& th : threads) th.join();
    for (int t = 0; t < kThreads; ++t) CHECK(mismatches[t] == 0);
}

namespace {

const std::string kEicar =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

// text_message - a single-part text message with this body (LF ends).
std::string text_message(const std::string& type, const std::string& body) {
    return "From: a@example.org\nTo: b@example.net\nSubject: t\nMIME-Version: 1.0\n"
           "Content-Type: " + type + "\n\n" + body;
}

// uu_block - kEicar as a uuencode block (two lines: 45 + 23 bytes).
std::string uu_block(const std::string& name) {
    // uu_char - a 6-bit value as a character ("`" for zero).
    auto ch = [](unsigned v) { return v == 0 ? '`' : static_cast<char>(32 + v); };
    std::string out = "begin 644 " + name + "\n";
    for (std::size_t off = 0; off < kEicar.size(); off += 45) {
        std::size_t n = std::min<std::size_t>(45, kEicar.size() - off);
        out += ch(static_cast<unsigned>(n));
        for (std::size_t i = 0; i < n; i += 3) {
            unsigned char b[3] = {0, 0, 0};
            for (std::size_t k = 0; k < 3 && i + k < n; ++k) b[k] = static_cast<unsigned char>(kEicar[off + i + k]);
            out += ch(b[0] >> 2);
            out += ch(((b[0] << 4) | (b[1] >> 4)) & 63);
            out += ch(((b[1] << 2) | (b[2] >> 6)) & 63);
            out += ch(b[2] & 63);
        }
        out += "\n";
    }
    return out + "`\nend\n";
}

} // namespace

TEST_CASE("mime walker: uuencoded EICAR inside text/plain is an item of its own") {
    WalkResult r = walk(load("uuencode_eicar.eml"));
    REQUIRE(ids(r) == "1,1.u1");
    const ScanItem& u = item(r, "1.u1");
    CHECK(content(u) == kEicar);
    CHECK(u.filename == "eicar.com");
    CHECK(u.transfer_encoding == "x-uuencode");
    CHECK(u.scannable);
    CHECK(to_hex(u.sha256) == sha(kEicar));
    CHECK(content(item(r, "1")).find("begin 644 eicar.com") != std::string::npos);
    // The clean twin gives its own bytes, and LF form the same.
    WalkResult c = walk(load("uuencode_clean.eml"));
    REQUIRE(ids(c) == "1,1.u1");
    CHECK(content(item(c, "1.u1")) == "This is a harmless little file.\nNothing to see here.\n");
    WalkResult lf = walk(text_message("text/html", "<pre>\n" + uu_block("../x.exe") + "</pre>\n"));
    REQUIRE(ids(lf) == "1,1.u1");
    CHECK(content(item(lf, "1.u1")) == kEicar);
    CHECK(item(lf, "1.u1").filename == "x.exe");
}

TEST_CASE("mime walker: yEnc and BinHex EICAR inside text are items of their own") {
    WalkResult y = walk(load("yenc_eicar.eml"));
    REQUIRE(ids(y) == "1,1.y1");
    CHECK(content(item(y, "1.y1")) == kEicar);
    CHECK(item(y, "1.y1").filename == "eicar.com");
    CHECK(item(y, "1.y1").transfer_encoding == "x-yenc");
    WalkResult b = walk(load("binhex_eicar.eml"));
    REQUIRE(ids(b) == "1,1.b1");
    CHECK(content(item(b, "1.b1")) == kEicar);
    CHECK(item(b, "1.b1").filename == "eicar.com");
    CHECK(item(b, "1.b1").transfer_encoding == "x-binhex");
    for (const char* f : {"yenc_clean.eml", "binhex_clean.eml"}) {
        WalkResult c = walk(load(f));
        REQUIRE(c.items.size() == 2);
        CHECK(content(c.items[1]) == "This is a harmless little file.\nNothing to see here.\n");
    }
}

TEST_CASE("mime walker: a base64 part whose bytes are text is searched, binary is not") {
    // Base64 of the uuencode block, made without GMime.
    static const char* a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    auto base64 = [](const std::string& in) {
        std::string out;
        for (std::size_t i = 0; i < in.size(); i += 3) {
            unsigned v = static_cast<unsigned char>(in[i]) << 16;
            if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
            if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
            out += a[(v >> 18) & 63];
            out += a[(v >> 12) & 63];
            out += i + 1 < in.size() ? a[(v >> 6) & 63] : '=';
            out += i + 2 < in.size() ? a[v & 63] : '=';
        }
        return out;
    };
    std::string text = "notes\n" + uu_block("e.com");
    std::string msg = "From: a@example.org\nMIME-Version: 1.0\nContent-Type: application/octet-stream\n"
                      "Content-Transfer-Encoding: base64\n\n" + base64(text) + "\n";
    WalkResult r = walk(msg);
    REQUIRE(ids(r) == "1,1.u1");
    CHECK(content(item(r, "1.u1")) == kEicar);
    std::string bin = std::string(1, '\0') + text;
    msg = "From: a@example.org\nMIME-Version: 1.0\nContent-Type: application/octet-stream\n"
          "Content-Transfer-Encoding: base64\n\n" + base64(bin) + "\n";
    CHECK(ids(walk(msg)) == "1");
}

TEST_CASE("mime walker: preamble and epilogue with EICAR are items, at depth 1 and 2") {
    WalkResult r = walk(load("preamble_eicar.eml"));
    REQUIRE(ids(r) == "preamble,1");
    CHECK(content(item(r, "preamble")) == kEicar);
    CHECK(item(r, "preamble").filename == "preamble.txt");
    CHECK(item(r, "preamble").content_type == "text/plain");
    CHECK(r.preamble == kEicar); // the token hash still sees the top-level preamble

    WalkResult n = walk(load("nested_epilogue_eicar.eml"));
    REQUIRE(ids(n) == "preamble,1.1,1.2,1.epilogue,2");
    CHECK(content(item(n, "1.epilogue")).substr(0, kEicar.size()) == kEicar);
    CHECK(item(n, "1.epilogue").filename == "epilogue.txt");
    CHECK(r.epilogue.empty());

    // Depth 2 preamble, and an epilogue of a message/rfc822 inside.
    std::string deep =
        "From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n"
        "--o\nContent-Type: message/rfc822\n\n"
        "Subject: inner\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=i\n\n" +
        kEicar + "\n--i\nContent-Type: text/plain\n\nx\n--i--\nafter " + kEicar + "\n--o--\n";
    WalkResult d = walk(deep);
    REQUIRE(ids(d) == "1.preamble,1.1,1.epilogue");
    CHECK(content(item(d, "1.preamble")) == kEicar);
    CHECK(content(item(d, "1.epilogue")).find(kEicar) == 6);
}

TEST_CASE("mime walker: whitespace-only preamble and epilogue give no item") {
    std::string msg = "From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n"
                      "  \t\n\n--o\nContent-Type: text/plain\n\nx\n--o--\n\n \n";
    CHECK(ids(walk(msg)) == "1");
    CHECK(ids(walk(crlf(msg))) == "1");
}

TEST_CASE("mime walker: uuencode in a preamble is decoded too") {
    std::string msg = "From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=o\n\n"
                      "hi\n" + uu_block("p.com") + "\n--o\nContent-Type: text/plain\n\nx\n--o--\n";
    WalkResult r = walk(msg);
    REQUIRE(ids(r) == "preamble,preamble.u1,1");
    CHECK(content(item(r, "preamble.u1")) == kEicar);
}

TEST_CASE("mime walker: inline blocks are bounded per part and count towards max_parts") {
    std::string body;
    for (int i = 0; i < 40; ++i) body += uu_block("e" + std::to_string(i) + ".com");
    WalkResult r = walk(text_message("text/plain", body));
    // 16 blocks decoded; the rest make the message suspect, so the raw
    // message is scanned as part "0" too.
    CHECK(r.items.size() == 1 + 16 + 1);
    CHECK_FALSE(r.ambiguous());
    REQUIRE(r.suspects.size() == 1);
    CHECK(r.suspects[0].find("more inline-encoded blocks") != std::string::npos);
    CHECK(r.items.back().part_id == "0");
    CHECK(item(r, "1.u16").filename == "e15.com");

    WalkLimits lim;
    lim.max_parts = 5;
    WalkResult l = walk(text_message("text/plain", body), lim);
    CHECK(l.limit_hit);
    CHECK(l.items.size() <= 6);
    CHECK(l.items.back().part_id == "0");

    // A block over max_scan_size is unscannable, not truncated.
    WalkLimits small;
    small.max_scan_size = 40;
    WalkResult s = walk(text_message("text/plain", "x\n" + uu_block("e.com")), small);
    REQUIRE(ids(s) == "1");
    CHECK_FALSE(item(s, "1").scannable); // the text itself is over 40 bytes
    small.max_scan_size = 300;
    s = walk(text_message("text/plain", "x\n" + uu_block("e.com")), small);
    REQUIRE(ids(s) == "1,1.u1");
    CHECK(item(s, "1.u1").scannable);
}

TEST_CASE("mime walker: a multipart without parts has its inline blocks decoded too") {
    std::string msg = "From: a@example.org\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=nope\n\n"
                      "hello\n" + uu_block("b.com") + "bye\n";
    WalkResult r = walk(msg);
    REQUIRE(ids(r) == "1,1.u1,0"); // no delimiter found: suspect, raw copy too
    CHECK(content(item(r, "1.u1")) == kEicar);
}
