// NAME
//   test_token.cpp - unit tests of the scan token (keys, JWS, parts hash)
// SUMMARY
//   Strict base64url, RFC 7638 thumbprints, key file checks, and the
//   forgery table: every tampered or forged token fails verification
//   with the expected reason, the untouched one passes. Message variants
//   are real MIME walked by the real walker (tests/data/token).
#include "icap-milter/mime/walker.hpp"
#include "icap-milter/token/base64url.hpp"
#include "icap-milter/token/keys.hpp"
#include "icap-milter/token/token.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

using namespace icapm;

namespace {

constexpr const char* kIstag = "CI0001-XYZ";
constexpr std::int64_t kNow = 1'800'000'000;

// fixture - a file of tests/data/token with CRLF line ends (as spooled).
std::string fixture(const std::string& name) {
    std::ifstream in(std::string(TEST_DATA_DIR) + "/token/" + name, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string out;
    for (char c : ss.str()) {
        if (c == '\n') out += '\r';
        out += c;
    }
    return out;
}

// hash_of - parts_hash of raw message bytes, walked for real.
std::string hash_of(const std::string& raw) {
    Spool s("/tmp", 1u << 20);
    s.append(raw);
    return parts_hash(walk_message(s, WalkLimits{}));
}

// replaced - raw with the first `from` replaced by `to` (which must exist).
std::string replaced(std::string raw, const std::string& from, const std::string& to) {
    auto at = raw.find(from);
    REQUIRE(at != std::string::npos);
    return raw.replace(at, from.size(), to);
}

// b64 - base64url of text.
std::string b64(const std::string& s) { return base64url_encode(s); }

// Keys - the signer (trusted), a stranger (not trusted), and the store.
struct Keys {
    SigningKey signer = SigningKey::generate();
    SigningKey stranger = SigningKey::generate();
    KeyStore store;
    Keys() { store.add(std::make_shared<const PublicKey>(PublicKey::from_pem(signer.public_key().pem(), "signer"))); }
};

// claims_for - good claims for a message hash.
TokenClaims claims_for(const std::string& hash) {
    TokenClaims c;
    c.issuer = "icap-milter";
    c.server = "mx-a.example";
    c.created = kNow - 60;
    c.expires = kNow + 7 * 86400;
    c.scan_version = kIstag;
    c.config_name = "default";
    c.config_id = "0123456789abcdef";
    c.verification_hash = hash;
    return c;
}

// payload_json - claims as JSON text, with extra raw members appended.
std::string payload_json(const TokenClaims& c, const std::string& thumb, const std::string& extra = "") {
    return R"({"version":1,"issuer":")" + c.issuer + R"(","server":")" + c.server + R"(","created":)" +
           std::to_string(c.created) + R"(,"exp":)" + std::to_string(c.expires) + R"(,"scanVersion":")" +
           c.scan_version + R"(","configName":"default","configID":"x","verificationHash":")" + c.verification_hash +
           R"(","keyThumbprint":")" + thumb + R"(","hashAlgorithm":"SHA256")" + extra + "}";
}

// signed_raw - header and payload JSON as given, signed by key.
std::string signed_raw(const std::string& header, const std::string& payload, const SigningKey& key) {
    std::string input = b64(header) + "." + b64(payload);
    return input + "." + b64(key.sign(input));
}

constexpr const char* kHeader = R"({"typ":"JWT","alg":"EdDSA"})";

// hs256 - an HS256 token whose secret is the public key PEM (key confusion).
std::string hs256(const std::string& payload, const std::string& secret) {
    std::string input = b64(R"({"typ":"JWT","alg":"HS256"})") + "." + b64(payload);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return input + "." + b64(std::string(reinterpret_cast<char*>(mac), len));
}

// segment - the n-th dot-separated segment of a token.
std::string segment(const std::string& token, int n) {
    std::size_t start = 0;
    for (int i = 0; i < n; ++i) start = token.find('.', start) + 1;
    auto end = token.find('.', start);
    return token.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

// with_signature - token with its signature bytes replaced.
std::string with_signature(const std::string& token, const std::string& sig) {
    return token.substr(0, token.rfind('.') + 1) + b64(sig);
}

// add_order - the Ed25519 group order L added to the S half of a
// signature (the classic malleation; RFC 8032 requires S < L).
std::string add_order(std::string sig) {
    static const unsigned char L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                        0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
    unsigned carry = 0;
    for (int i = 0; i < 32; ++i) {
        unsigned v = static_cast<unsigned char>(sig[32 + i]) + L[i] + carry;
        sig[32 + i] = static_cast<char>(v & 0xff);
        carry = v >> 8;
    }
    return sig;
}

} // namespace

TEST_CASE("token: base64url is strict") {
    CHECK(base64url_encode("") == "");
    CHECK(base64url_encode("f") == "Zg");
    CHECK(base64url_encode("fo") == "Zm8");
    CHECK(base64url_encode("foo") == "Zm9v");
    CHECK(base64url_encode("\xfb\xff") == "-_8");
    CHECK(base64url_decode("Zm9v") == std::optional<std::string>("foo"));
    CHECK(base64url_decode("Zg") == std::optional<std::string>("f"));
    CHECK(base64url_decode("-_8") == std::optional<std::string>("\xfb\xff"));
    CHECK_FALSE(base64url_decode("Zg=="));   // padding
    CHECK_FALSE(base64url_decode("Zm9v "));  // blank
    CHECK_FALSE(base64url_decode("+/8"));    // standard alphabet
    CHECK_FALSE(base64url_decode("Z"));      // impossible length
    CHECK_FALSE(base64url_decode("Zh"));     // non-zero unused bits ("Zg" is canonical)
    CHECK_FALSE(base64url_decode(std::string("Zm\0v", 4)));
}

TEST_CASE("token: RFC 7638 thumbprint of an Ed25519 key") {
    // RFC 8037 appendix A.3: the thumbprint of its example key.
    auto raw = base64url_decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
    REQUIRE(raw);
    CHECK(jwk_thumbprint(*raw) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    CHECK(valid_thumbprint("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"));
    CHECK_FALSE(valid_thumbprint("../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaa"));
    CHECK_FALSE(valid_thumbprint("kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4"));
}

TEST_CASE("token: key files") {
    char dir_template[] = "/tmp/icapm-token-test-XXXXXX";
    REQUIRE(mkdtemp(dir_template));
    const std::string dir = dir_template;
    SigningKey key = SigningKey::generate();
    const std::string path = dir + "/own.key";
    {
        std::ofstream out(path);
        out << key.private_pem().str();
    }
    SUBCASE("group- or world-readable private key is refused") {
        chmod(path.c_str(), 0640);
        CHECK_THROWS_WITH_AS(SigningKey::load_file(path), doctest::Contains("group or others"), std::runtime_error);
        chmod(path.c_str(), 0604);
        CHECK_THROWS_AS(SigningKey::load_file(path), std::runtime_error);
    }
    SUBCASE("owner-only key loads, same thumbprint") {
        chmod(path.c_str(), 0600);
        SigningKey loaded = SigningKey::load_file(path);
        CHECK(loaded.public_key().thumbprint() == key.public_key().thumbprint());
    }
    SUBCASE("a symlink to the key is refused") {
        const std::string link = dir + "/link.key";
        REQUIRE(symlink(path.c_str(), link.c_str()) == 0);
        chmod(path.c_str(), 0600);
        CHECK_THROWS_AS(SigningKey::load_file(link), std::runtime_error);
        unlink(link.c_str());
    }
    SUBCASE("trusted directory: *.pem files, Ed25519 only") {
        const std::string tdir = dir + "/trusted";
        mkdir(tdir.c_str(), 0755);
        {
            std::ofstream(tdir + "/a.pem") << key.public_key().pem();
            std::ofstream(tdir + "/README") << "not a key, ignored\n";
        }
        KeyStore store;
        store.load_directory(tdir);
        CHECK(store.size() == 1);
        CHECK(store.find(key.public_key().thumbprint()) != nullptr);
        std::ofstream(tdir + "/bad.pem") << "-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n";
        KeyStore again;
        CHECK_THROWS_AS(again.load_directory(tdir), std::runtime_error);
        unlink((tdir + "/bad.pem").c_str());
        unlink((tdir + "/a.pem").c_str());
        unlink((tdir + "/README").c_str());
        rmdir(tdir.c_str());
    }
    unlink(path.c_str());
    rmdir(dir.c_str());
}

TEST_CASE("token: fold and unfold") {
    std::string token(600, 'a');
    std::string folded = fold_token(token);
    std::size_t longest = 0, start = 0;
    while (start <= folded.size()) {
        auto nl = folded.find('\n', start);
        std::size_t end = nl == std::string::npos ? folded.size() : nl;
        longest = std::max(longest, end - start);
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    CHECK(longest <= 998 - std::string("X-Scan-Token: ").size());
    CHECK(unfold_token(folded) == token);
    CHECK(unfold_token(" abc\r\n\tdef") == "abcdef");
}

TEST_CASE("token: forgery and tamper table") {
    Keys keys;
    const std::string raw = fixture("two_attachments.eml");
    const std::string hash = hash_of(raw);
    const TokenClaims good = claims_for(hash);
    const std::string token = encode_token(good, keys.signer);
    const std::string thumb = keys.signer.public_key().thumbprint();

    VerifyInput in;
    in.keys = &keys.store;
    in.scan_versions = {"CI0001-other", kIstag};
    in.verification_hash = hash;
    in.now = kNow;
    in.skew = 300;

    SUBCASE("the untouched token passes") {
        auto r = verify_token(token, in);
        INFO(r.reason << ": " << r.detail);
        CHECK(r.ok);
        CHECK(r.claims.key_thumbprint == thumb);
        CHECK(r.claims.server == "mx-a.example");
        CHECK(verify_token_headers({fold_token(token)}, in).ok);
        CHECK(token.size() < 1000);
    }

    // A row: what is forged, the token (or header values), the message
    // bytes the verifier sees (empty: the original), the expected reason.
    struct Row {
        std::string name;
        std::function<std::vector<std::string>()> headers;
        std::string message;
        std::string reason;
    };
    auto one = [](std::string t) { return [t] { return std::vector<std::string>{t}; }; };
    TokenClaims expired = good, future = good, wrong_version = good, path_thumb = good;
    expired.created = kNow - 8 * 86400;
    expired.expires = kNow - 86400;
    future.created = kNow + 3600;
    future.expires = kNow + 8 * 86400;
    wrong_version.scan_version = "CI0001-OLD";
    const std::string payload = payload_json(good, thumb);
    const std::string sig = base64url_decode(segment(token, 2)).value();
    std::string flipped = sig;
    flipped[10] = static_cast<char>(flipped[10] ^ 0x01);
    std::string last_bits = token;
    // The last character of an 86-character signature carries 4 unused bits.
    {
        const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        last_bits.back() = alphabet[alphabet.find(last_bits.back()) ^ 1];
    }
    KeyStore retired; // the signer's key was trusted once, then removed

    const std::string att1 = "Zmlyc3QgYXR0YWNobWVudDogcXVhcnRlcmx5IG51bWJlcnMgMSwyLDMK";
    const std::string bin_part_start = "--b1\r\nContent-Type: application/octet-stream";
    const std::string csv_part = raw.substr(raw.find("--b1\r\nContent-Type: text/csv"),
                                            raw.find(bin_part_start) - raw.find("--b1\r\nContent-Type: text/csv"));

    std::vector<Row> rows = {
        {"alg none", one(b64(R"({"typ":"JWT","alg":"none"})") + "." + b64(payload) + "."), "", "alg"},
        {"HS256 with the public key as secret", one(hs256(payload, keys.signer.public_key().pem())), "", "alg"},
        {"HS256 with the raw public key as secret", one(hs256(payload, keys.signer.public_key().raw())), "", "alg"},
        {"RS256 header", one(signed_raw(R"({"typ":"JWT","alg":"RS256"})", payload, keys.signer)), "", "alg"},
        {"alg spelled eddsa", one(signed_raw(R"({"typ":"JWT","alg":"eddsa"})", payload, keys.signer)), "", "alg"},
        {"alg Ed25519", one(signed_raw(R"({"typ":"JWT","alg":"Ed25519"})", payload, keys.signer)), "", "alg"},
        {"jwk in header",
         one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","jwk":{"kty":"OKP"}})", payload, keys.stranger)), "",
         "header-param"},
        {"jku in header", one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","jku":"https://x/"})", payload, keys.signer)),
         "", "header-param"},
        {"x5u in header", one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","x5u":"https://x/"})", payload, keys.signer)),
         "", "header-param"},
        {"x5c in header", one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","x5c":["MII"]})", payload, keys.signer)), "",
         "header-param"},
        {"crit in header", one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","crit":["exp"]})", payload, keys.signer)), "",
         "header-param"},
        {"kid in header", one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","kid":"../../k"})", payload, keys.signer)), "",
         "header-param"},
        {"typ missing", one(signed_raw(R"({"alg":"EdDSA"})", payload, keys.signer)), "", "header"},
        {"extra header member", one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","cty":"x"})", payload, keys.signer)), "",
         "header"},
        {"unknown signer", one(encode_token(good, keys.stranger)), "", "unknown-key"},
        {"retired signer", [&] { in.keys = &retired; return std::vector<std::string>{token}; }, "", "unknown-key"},
        {"path characters in keyThumbprint",
         one(signed_raw(kHeader, payload_json(good, "../../../../../etc/ssh/ssh_host_ed25519_key.pub"), keys.signer)),
         "", "thumbprint"},
        {"two segments", one(token.substr(0, token.rfind('.'))), "", "segments"},
        {"four segments", one(token + "." + segment(token, 2)), "", "segments"},
        {"empty payload segment", one(segment(token, 0) + ".." + segment(token, 2)), "", "segments"},
        {"padding on the signature", one(token + "=="), "", "base64"},
        {"padding on the payload",
         one(segment(token, 0) + "." + segment(token, 1) + "=." + segment(token, 2)), "", "base64"},
        {"standard base64 alphabet", one(segment(token, 0) + "." + segment(token, 1) + "." + [&] {
             std::string s = segment(token, 2);
             for (auto& ch : s) if (ch == '-') ch = '+'; else if (ch == '_') ch = '/';
             return s + (s.find_first_of("+/") == std::string::npos ? "+" : "");
         }()), "", "base64"},
        {"stray character", one(segment(token, 0) + ".*" + segment(token, 1) + "." + segment(token, 2)), "", "base64"},
        {"duplicate member in payload",
         one(signed_raw(kHeader, payload_json(good, thumb, R"(,"scanVersion":"CI0001-FORGED")"), keys.signer)), "",
         "duplicate-member"},
        {"duplicate member in header", one(signed_raw(R"({"typ":"JWT","alg":"EdDSA","alg":"EdDSA"})", payload,
                                                      keys.signer)), "", "duplicate-member"},
        {"payload not JSON", one(signed_raw(kHeader, "{\"version\":1,", keys.signer)), "", "json"},
        {"payload an array", one(signed_raw(kHeader, "[1,2]", keys.signer)), "", "json"},
        {"unknown claim", one(signed_raw(kHeader, payload_json(good, thumb, R"(,"admin":true)"), keys.signer)), "",
         "claims"},
        {"exp as a string", one(signed_raw(kHeader, replaced(payload, R"("exp":)" + std::to_string(good.expires),
                                                             R"("exp":")" + std::to_string(good.expires) + "\""),
                                           keys.signer)), "", "claims"},
        {"expired", one(encode_token(expired, keys.signer)), "", "expired"},
        {"future-dated", one(encode_token(future, keys.signer)), "", "future"},
        {"wrong scanVersion", one(encode_token(wrong_version, keys.signer)), "", "scan-version"},
        {"no healthy scanner", [&] { in.scan_versions.clear(); return std::vector<std::string>{token}; }, "",
         "no-scanner"},
        {"payload re-encoded by a forger (server changed)",
         one(segment(token, 0) + "." + b64(replaced(payload_json(good, thumb), "mx-a.example", "evil.example")) + "." +
             segment(token, 2)), "", "signature"},
        {"header re-serialised (members swapped)",
         one(b64(R"({"alg":"EdDSA","typ":"JWT"})") + "." + segment(token, 1) + "." + segment(token, 2)), "",
         "signature"},
        {"malleated signature (one bit)", one(with_signature(token, flipped)), "", "signature"},
        {"malleated signature (S + L)", one(with_signature(token, add_order(sig))), "", "signature"},
        {"signature with unused bits set", one(last_bits), "", "base64"},
        {"signature truncated", one(with_signature(token, sig.substr(0, 63))), "", "signature"},
        {"100 KB token", one(token + std::string(100 * 1024, 'A')), "", "size"},
        {"two token headers", [&] { return std::vector<std::string>{token, token}; }, "", "multiple"},
        {"one attachment byte changed", one(token), replaced(raw, att1, "Zmlyc3QgYXR0YWNobWVudDogcXVhcnRlcmx5IG51bWJlcnMgMSwyLDQK"), "hash"},
        {"a part added", one(token), replaced(raw, "--b1--", csv_part + "--b1--"), "hash"},
        {"a part removed", one(token), replaced(raw, csv_part, ""), "hash"},
        {"parts reordered", one(token), [&] {
             std::string r = replaced(raw, csv_part, "");
             return replaced(r, "--b1--", csv_part + "--b1--");
         }(), "hash"},
        {"a filename changed", one(token), replaced(replaced(raw, "filename=\"numbers.csv\"", "filename=\"numbers.exe\""),
                                                   "name=\"numbers.csv\"", "name=\"numbers.exe\""), "hash"},
        {"a new inline part", one(token),
         replaced(raw, "--b1--", "--b1\r\nContent-Type: text/html\r\nContent-Disposition: inline\r\n\r\n<p>hi</p>\r\n--b1--"),
         "hash"},
        {"the preamble changed", one(token), replaced(raw, "This is the preamble.", "This is the preamble!"), "hash"},
        {"the epilogue changed", one(token), replaced(raw, "This is the epilogue.", "Click here."), "hash"},
        {"transfer encoding changed (same bytes)", one(token),
         replaced(raw, "Content-Transfer-Encoding: 7bit\r\n\r\nHello", "Content-Transfer-Encoding: quoted-printable\r\n\r\nHello"),
         "hash"},
        {"disposition changed", one(token),
         replaced(raw, "Content-Disposition: attachment; filename=\"bytes.bin\"", "Content-Disposition: inline; filename=\"bytes.bin\""),
         "hash"},
    };
    CHECK(rows.size() >= 20);
    for (const Row& row : rows) {
        CAPTURE(row.name);
        in.keys = &keys.store;
        in.scan_versions = {"CI0001-other", kIstag};
        in.verification_hash = row.message.empty() ? hash : hash_of(row.message);
        auto values = row.headers();
        auto r = verify_token_headers(values, in);
        INFO("got " << r.reason << ": " << r.detail);
        CHECK_FALSE(r.ok);
        CHECK(r.reason == row.reason);
    }
    // The same message re-encoded in transit with the same decoded bytes
    // keeps its hash: the base64 line length of an attachment.
    std::string rewrapped = raw;
    auto pos = rewrapped.find("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4\r\n");
    REQUIRE(pos != std::string::npos);
    rewrapped.replace(pos + 40, 0, "\r\n");
    CHECK(hash_of(rewrapped) == hash);
    // ... and so does a different boundary string and added trace headers.
    std::string reboundary = "Received: from a by b; Sun, 22 Nov 2026 06:00:01 +0000\r\n" + raw;
    for (std::size_t p = 0; (p = reboundary.find("b1", p)) != std::string::npos;) reboundary.replace(p, 2, "zz9");
    CHECK(hash_of(reboundary) == hash);
}
