// NAME
//   test_mime_encryption.cpp - unit tests of the ciphertext checks
// SUMMARY
//   OpenPgpCheck on the gpg-made fixtures (armour and binary, fed whole,
//   byte by byte and in odd chunks), on hand-made packet sequences (old
//   and new formats, partial and indeterminate lengths) and on everything
//   that only looks like OpenPGP; is_pgp_control_body; inspect_cms on the
//   openssl-made fixtures, hand-made DER and garbage.
#include "icap-milter/mime/encryption.hpp"

#include "mime_fixtures.hpp"

#include <doctest/doctest.h>

#include <openssl/err.h>

#include <fstream>
#include <sstream>
#include <string>

using namespace icapm;
using namespace icapm::test;

namespace {

// between - the text after the first `from` up to the next `to`.
std::string between(const std::string& s, const std::string& from, const std::string& to) {
    std::size_t a = s.find(from);
    REQUIRE(a != std::string::npos);
    a += from.size();
    std::size_t b = s.find(to, a);
    REQUIRE(b != std::string::npos);
    return s.substr(a, b - a);
}

// unbase64 - decode base64, skipping everything else (test data only).
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

// pgp - run bytes through a fresh OpenPgpCheck in chunks of `step` (0 = whole).
bool pgp(std::string_view bytes, std::size_t step = 0) {
    OpenPgpCheck c;
    if (step == 0) step = bytes.size() + 1;
    for (std::size_t i = 0; i < bytes.size(); i += step)
        if (!c.feed(bytes.substr(i, step))) return false;
    return c.finish();
}

// armour - the armour block of pgp_encrypted.eml, as gpg wrote it (CRLF).
std::string armour() {
    return "-----BEGIN PGP MESSAGE-----" +
           between(load("pgp_encrypted.eml"), "-----BEGIN PGP MESSAGE-----", "-----END PGP MESSAGE-----") +
           "-----END PGP MESSAGE-----\r\n";
}

// binary - the binary OpenPGP message of pgp_binary.eml.
std::string binary() {
    return unbase64(between(load("pgp_binary.eml"), "Content-Transfer-Encoding: base64\r\n\r\n", "--enc--"));
}

// bytes - a string from a list of octets.
std::string bytes(std::initializer_list<int> v) {
    std::string s;
    for (int b : v) s += static_cast<char>(b);
    return s;
}

// der_of - the decoded CMS blob of an S/MIME fixture.
std::string der_of(const std::string& name) {
    return unbase64(between(load(name), "Content-Transfer-Encoding: base64\r\n\r\n", "\r\n\r\n"));
}

// b64 - plain base64, one line (test data only).
std::string b64(std::string_view in) {
    static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    for (std::size_t i = 0; i < in.size(); i += 3) {
        std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        if (i + 2 < in.size()) v |= static_cast<unsigned char>(in[i + 2]);
        out += abc[(v >> 18) & 63];
        out += abc[(v >> 12) & 63];
        out += i + 1 < in.size() ? abc[(v >> 6) & 63] : '=';
        out += i + 2 < in.size() ? abc[v & 63] : '=';
    }
    return out;
}

// armoured - bytes in a minimal armour block.
std::string armoured(std::string_view packets) {
    return "-----BEGIN PGP MESSAGE-----\n\n" + b64(packets) + "\n-----END PGP MESSAGE-----\n";
}

// A new-format PKESK v3 (tag 1) and SEIPD v1 (tag 18), bodies made up.
const std::string kPkesk = bytes({0xC1, 0x05, 0x03, 1, 2, 3, 4});
const std::string kSeipd = bytes({0xD2, 0x04, 0x01, 9, 9, 9});

} // namespace

TEST_CASE("openpgp check: the gpg fixtures, whole and in any chunking") {
    std::string a = armour();
    std::string b = binary();
    REQUIRE(b.size() > 100);
    for (std::size_t step : {0, 1, 2, 3, 7, 64, 1000}) {
        CAPTURE(step);
        CHECK(pgp(a, step));
        CHECK(pgp(b, step));
    }
    std::string lf;
    for (char c : a)
        if (c != '\r') lf += c;
    CHECK(pgp(lf));
    CHECK(pgp("\r\n  \r\n" + a + "\r\n\r\n \t\r\n")); // whitespace around is fine
    CHECK(pgp(a.substr(0, a.size() - 2)));             // no newline after END
}

TEST_CASE("openpgp check: armour variants") {
    std::string core = b64(kPkesk + kSeipd);
    CHECK(pgp(armoured(kPkesk + kSeipd)));
    CHECK(pgp("-----BEGIN PGP MESSAGE-----\nVersion: GnuPG v2\nComment: x: y\n\n" + core +
              "\n=AbCd\n-----END PGP MESSAGE-----\n"));
    CHECK(pgp("-----BEGIN PGP MESSAGE-----\n" + core + "\n-----END PGP MESSAGE-----\n")); // no blank line
    // What is not one armoured encrypted message.
    CHECK_FALSE(pgp(""));
    CHECK_FALSE(pgp("\r\n\r\n"));
    CHECK_FALSE(pgp("-----BEGIN PGP MESSAGE-----\n\n" + core + "\n"));                           // no END
    CHECK_FALSE(pgp(armoured(kPkesk + kSeipd) + "PS: run the attachment\n"));                    // text after
    CHECK_FALSE(pgp("Hi\n" + armoured(kPkesk + kSeipd)));                                          // text before
    CHECK_FALSE(pgp(armoured(kPkesk + kSeipd) + armoured(kPkesk + kSeipd)));                      // two blocks
    CHECK_FALSE(pgp("-----BEGIN PGP SIGNATURE-----\n\n" + core + "\n-----END PGP SIGNATURE-----\n"));
    CHECK_FALSE(pgp("-----BEGIN PGP MESSAGE-----\n\n" + core + "!\n-----END PGP MESSAGE-----\n")); // not base64
    CHECK_FALSE(pgp("-----BEGIN PGP MESSAGE-----\n\n" + core.substr(0, core.size() - 1) +
                    "\n-----END PGP MESSAGE-----\n")); // a quartet cut short
    CHECK_FALSE(pgp("-----BEGIN PGP MESSAGE-----\n\n" + core + "\n=AbCd\nAAAA\n-----END PGP MESSAGE-----\n"));
    CHECK_FALSE(pgp(armoured("MZ\x90 an exe in armour")));                 // not packets
    CHECK_FALSE(pgp(armoured(kPkesk)));                                     // no data packet
    CHECK_FALSE(pgp("-----BEGIN PGP MESSAGE-----\n\n" + std::string(5000, 'A') + "\n"));  // line too long
}

TEST_CASE("openpgp check: binary packet sequences") {
    CHECK(pgp(kPkesk + kSeipd));
    CHECK(pgp(kPkesk + kPkesk + kSeipd));                                       // two recipients
    CHECK(pgp(bytes({0xC3, 0x03, 0x04, 7, 7}) + kSeipd));                       // SKESK v4
    CHECK(pgp(bytes({0xCA, 0x03, 'P', 'G', 'P'}) + kPkesk + kSeipd));            // marker first
    CHECK(pgp(bytes({0x84, 0x03, 0x03, 1, 2}) + kSeipd));                       // old-format PKESK
    CHECK(pgp(bytes({0x85, 0x00, 0x03, 0x03, 1, 2}) + kSeipd));                 // old, 2-octet length
    CHECK(pgp(bytes({0x86, 0x00, 0x00, 0x00, 0x02, 0x03, 1}) + kSeipd));        // old, 4-octet length
    CHECK(pgp(kPkesk + bytes({0xA7, 1, 2, 3, 4, 5})));                          // SED, to the end
    CHECK(pgp(kPkesk + bytes({0xD4, 0x02, 0x01, 0})));                          // AEAD packet v1
    {
        std::string body(300, 'x');
        body[0] = 0x01;                                                       // SEIPD v1
        // Two-octet length: 300 = ((192 - 192) << 8) + 108 + 192.
        CHECK(pgp(kPkesk + bytes({0xD2, 192, 108}) + body));
        // Five-octet length.
        CHECK(pgp(kPkesk + bytes({0xD2, 255, 0, 0, 1, 44}) + body));
        // Partial lengths: 256 (0xE8) then a final 44.
        CHECK(pgp(kPkesk + bytes({0xD2, 0xE8}) + body.substr(0, 256) + bytes({44}) + body.substr(256)));
        // Partial then a zero-length final chunk.
        CHECK(pgp(kPkesk + bytes({0xD2, 0xE1, 0x01, 7, 0x00})));
        CHECK_FALSE(pgp(kPkesk + bytes({0xD2, 192, 108}) + body.substr(1)));   // one byte short
        CHECK_FALSE(pgp(kPkesk + bytes({0xD2, 0xE8}) + body.substr(0, 256))); // partial never ends
    }
    CHECK_FALSE(pgp(kSeipd + kPkesk));                                           // packet after data
    CHECK_FALSE(pgp(kPkesk + kSeipd + "x"));                                     // byte after data
    CHECK_FALSE(pgp(kPkesk));                                                    // no data packet
    CHECK_FALSE(pgp(kPkesk + kSeipd.substr(0, 4)));                              // data cut short
    CHECK_FALSE(pgp(bytes({0xC1, 0x03, 0x02, 1, 2}) + kSeipd));                  // PKESK v2
    CHECK_FALSE(pgp(kPkesk + bytes({0xD2, 0x02, 0x05, 0})));                     // SEIPD v5
    CHECK_FALSE(pgp(bytes({0xC1, 0x00}) + kSeipd));                              // empty PKESK
    CHECK_FALSE(pgp(bytes({0xC1, 0xE1, 0x03, 1, 0x01, 2}) + kSeipd));            // partial on PKESK
    CHECK_FALSE(pgp(bytes({0x87, 0x03}) + kSeipd));                              // indeterminate PKESK
    CHECK_FALSE(pgp(bytes({0xCB, 0x03, 'b', 0, 0})));                            // literal data
    CHECK_FALSE(pgp(bytes({0xC8, 0x02, 0x01, 0x78})));                           // compressed data
    CHECK_FALSE(pgp(bytes({0xC2, 0x02, 0x04, 0x00}) + kSeipd));                  // signature first
    CHECK_FALSE(pgp(bytes({0x00, 0x01}) + kSeipd));                              // no packet tag
    CHECK_FALSE(pgp("MZ\x90\x00 a Windows executable"));
    CHECK_FALSE(pgp(std::string("PK\x03\x04", 4) + "zip"));
}

TEST_CASE("openpgp check: PGP/MIME control part body") {
    CHECK(is_pgp_control_body("Version: 1\r\n"));
    CHECK(is_pgp_control_body("Version: 1"));
    CHECK(is_pgp_control_body("\r\nVersion: 1  \r\n\r\n"));
    CHECK(is_pgp_control_body("Comment: x\nVersion: 1\n"));
    CHECK_FALSE(is_pgp_control_body(""));
    CHECK_FALSE(is_pgp_control_body("Version: 2\r\n"));
    CHECK_FALSE(is_pgp_control_body("Version: 10\r\n"));
    CHECK_FALSE(is_pgp_control_body("Version: 1\r\n" + std::string(2000, 'x')));
    CHECK(is_pkcs7_mime_type("application/pkcs7-mime"));
    CHECK(is_pkcs7_mime_type("application/x-pkcs7-mime"));
    CHECK_FALSE(is_pkcs7_mime_type("application/pkcs7-signature"));
}

TEST_CASE("cms check: what openssl made, and what only looks like it") {
    std::string env = der_of("smime_enveloped.eml");
    std::string auth = der_of("smime_auth_enveloped.eml");
    std::string sig = der_of("smime_opaque_signed.eml");
    REQUIRE(env.size() > 100);

    CHECK(inspect_cms(env).kind == CmsKind::kEnveloped);
    CHECK(inspect_cms(auth).kind == CmsKind::kEnveloped);
    CHECK(inspect_cms(env + "\r\n").kind == CmsKind::kEnveloped);
    CHECK(inspect_cms(env + std::string(3, '\0')).kind == CmsKind::kEnveloped);
    CmsInfo s = inspect_cms(sig);
    CHECK(s.kind == CmsKind::kSigned);
    CHECK(s.has_content);
    CHECK(s.content.find("Content-Type: multipart/mixed") == 0);
    CHECK(s.content.find("SU5ORVItQVRUQUNITUVOVC1CWVRFUw==") != std::string::npos);

    CHECK(inspect_cms("").kind == CmsKind::kNotCms);
    CHECK(inspect_cms("MZ\x90 an exe").kind == CmsKind::kNotCms);
    CHECK(inspect_cms(env + "MZ").kind == CmsKind::kNotCms);                  // junk after it
    CHECK(inspect_cms(env.substr(0, env.size() - 1)).kind == CmsKind::kNotCms); // cut short
    CHECK(inspect_cms(env.substr(0, 40)).kind == CmsKind::kNotCms);
    // The right first bytes (SEQUENCE, id-envelopedData, [0]) and nothing behind them.
    std::string head = bytes({0x30, 0x13, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03,
                              0xa0, 0x06, 0x30, 0x04, 0x02, 0x01, 0x00, 0x31});
    CHECK(inspect_cms(head).kind == CmsKind::kNotCms);
    // A well-formed ContentInfo of type data (empty OCTET STRING) is CMS, not ciphertext.
    CHECK(inspect_cms(bytes({0x30, 0x0f, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01,
                             0xa0, 0x02, 0x04, 0x00}))
              .kind == CmsKind::kOther);
    // Deep nesting of indefinite-length constructed tags: OpenSSL refuses, nothing crashes.
    std::string deep;
    for (int i = 0; i < 10000; ++i) deep += bytes({0x30, 0x80});
    CHECK(inspect_cms(deep).kind == CmsKind::kNotCms);
    CHECK(ERR_peek_error() == 0); // the failed parses left no errors behind
}
