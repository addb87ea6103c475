// NAME
//   token.cpp - scan token encode, decode and strict verification
// SUMMARY
//   JSON comes from nlohmann-json, read through a parser callback that
//   refuses duplicate members and nesting (nlohmann alone keeps the last
//   duplicate silently). Base64url is strict (base64url.cpp). The
//   signature is checked with OpenSSL before any claim is believed; the
//   claims are only parsed first to find keyThumbprint.
// DIAGNOSTICS
//   Reasons: size, segments, base64, json, duplicate-member, header, alg,
//   header-param, claims, thumbprint, unknown-key, signature, future,
//   expired, scan-version, no-scanner, hash.
#include "icap-milter/token/token.hpp"

#include "icap-milter/common/sha256.hpp"
#include "icap-milter/token/base64url.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <set>

namespace icapm {

namespace {

using json = nlohmann::json;

constexpr std::string_view kHeaderJson = R"({"typ":"JWT","alg":"EdDSA"})";
constexpr std::size_t kMaxClaimText = 256;

// put_u64 - append n big-endian (the canonical form's integers).
void put_u64(std::string& out, std::uint64_t n) {
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((n >> shift) & 0xff);
}

// put_field - append a length-prefixed byte string.
void put_field(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

// fail - a failed VerifyResult.
VerifyResult fail(std::string reason, std::string detail, TokenClaims claims = {}) {
    VerifyResult r;
    r.reason = std::move(reason);
    r.detail = std::move(detail);
    r.claims = std::move(claims);
    return r;
}

// strict_json - parse one JSON object, refusing duplicate members (at
// any depth) and, unless allow_nested, nested values. nullopt with
// *reason "json" or "duplicate-member". The header may nest so that a
// forbidden "jwk" or "x5c" is reported as such.
std::optional<json> strict_json(std::string_view text, bool allow_nested, std::string* reason, std::string* detail) {
    std::vector<std::set<std::string>> seen;
    bool duplicate = false, nested = false;
    std::string dup_name;
    auto cb = [&](int depth, json::parse_event_t ev, json& parsed) -> bool {
        switch (ev) {
        case json::parse_event_t::object_start:
            seen.emplace_back();
            if (depth > 0) nested = true;
            break;
        case json::parse_event_t::object_end:
            if (!seen.empty()) seen.pop_back();
            break;
        case json::parse_event_t::array_start: nested = true; break;
        case json::parse_event_t::key:
            if (!seen.empty() && parsed.is_string() && !seen.back().insert(parsed.get<std::string>()).second) {
                duplicate = true;
                dup_name = parsed.get<std::string>();
            }
            break;
        default: break;
        }
        return true;
    };
    json j;
    try {
        j = json::parse(text.begin(), text.end(), cb, true, false);
    } catch (const json::exception& e) {
        *reason = "json";
        *detail = std::string("not JSON: ") + e.what();
        return std::nullopt;
    }
    if (duplicate) {
        *reason = "duplicate-member";
        *detail = "duplicate JSON member \"" + dup_name.substr(0, 40) + "\"";
        return std::nullopt;
    }
    if (!j.is_object() || (nested && !allow_nested)) {
        *reason = "json";
        *detail = "not a flat JSON object";
        return std::nullopt;
    }
    return j;
}

// get_text - a bounded string claim into out; false when missing or wrong.
bool get_text(const json& j, const char* name, std::string& out) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return false;
    const auto& s = it->get_ref<const std::string&>();
    if (s.size() > kMaxClaimText) return false;
    out = s;
    return true;
}

// get_int - an integer claim (no floats, no strings) into out.
bool get_int(const json& j, const char* name, std::int64_t& out) {
    auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer()) return false;
    out = it->get<std::int64_t>();
    return true;
}

// claims_from - the typed payload; "" or the name of the bad member.
std::string claims_from(const json& j, TokenClaims& c) {
    static const std::set<std::string> known = {"version",     "issuer",      "server",
                                                "created",     "exp",         "scanVersion",
                                                "configName",  "configID",    "verificationHash",
                                                "keyThumbprint", "hashAlgorithm"};
    for (auto it = j.begin(); it != j.end(); ++it)
        if (!known.count(it.key())) return "unknown member " + it.key().substr(0, 40);
    std::int64_t version = 0;
    if (!get_int(j, "version", version) || version != kTokenVersion) return "version";
    c.version = static_cast<int>(version);
    if (!get_text(j, "issuer", c.issuer)) return "issuer";
    if (!get_text(j, "server", c.server)) return "server";
    if (!get_int(j, "created", c.created)) return "created";
    if (!get_int(j, "exp", c.expires)) return "exp";
    if (!get_text(j, "scanVersion", c.scan_version) || c.scan_version.empty()) return "scanVersion";
    if (!get_text(j, "configName", c.config_name)) return "configName";
    if (!get_text(j, "configID", c.config_id)) return "configID";
    if (!get_text(j, "verificationHash", c.verification_hash)) return "verificationHash";
    if (!get_text(j, "keyThumbprint", c.key_thumbprint)) return "keyThumbprint";
    if (!get_text(j, "hashAlgorithm", c.hash_algorithm) || c.hash_algorithm != "SHA256") return "hashAlgorithm";
    if (c.expires <= c.created) return "exp not after created";
    return {};
}

// same_bytes - constant-time equality for equal lengths.
bool same_bytes(std::string_view a, std::string_view b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace

// parts_hash - see token.hpp; the layout is part of the token format.
std::string parts_hash(const WalkResult& walk) {
    std::string canon;
    canon.append("icap-milter parts v1");
    canon += '\0';
    // The whole-message views (part "0", "0.text"...) are second readings of
    // bytes the parts already cover, and "0" holds the headers every hop
    // changes.
    std::uint64_t n = 0;
    for (const ScanItem& item : walk.items) n += !is_view_id(item.part_id);
    put_u64(canon, n);
    for (const ScanItem& item : walk.items) {
        if (is_view_id(item.part_id)) continue;
        put_field(canon, item.part_id);
        put_field(canon, item.content_type);
        put_field(canon, item.transfer_encoding);
        put_field(canon, item.disposition);
        put_field(canon, item.filename);
        put_u64(canon, item.size);
        canon.append(reinterpret_cast<const char*>(item.sha256.data()), item.sha256.size());
        canon += item.scannable ? '\1' : '\0';
    }
    put_field(canon, walk.preamble);
    put_field(canon, walk.epilogue);
    Sha256 h;
    h.update(canon);
    Digest d = h.finish();
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// encode_token - header (fixed text), payload (sorted members), signature.
std::string encode_token(TokenClaims c, const SigningKey& key) {
    c.key_thumbprint = key.public_key().thumbprint();
    json p = {{"version", c.version},
              {"issuer", c.issuer},
              {"server", c.server},
              {"created", c.created},
              {"exp", c.expires},
              {"scanVersion", c.scan_version},
              {"configName", c.config_name},
              {"configID", c.config_id},
              {"verificationHash", c.verification_hash},
              {"keyThumbprint", c.key_thumbprint},
              {"hashAlgorithm", c.hash_algorithm}};
    std::string input = base64url_encode(kHeaderJson) + "." + base64url_encode(p.dump());
    std::string sig = key.sign(input);
    return input + "." + base64url_encode(sig);
}

// decode_token - everything but the signature and the comparisons.
std::optional<DecodedToken> decode_token(std::string_view token, std::string* reason, std::string* detail) {
    auto bad = [&](const char* r, std::string d) -> std::optional<DecodedToken> {
        *reason = r;
        *detail = std::move(d);
        return std::nullopt;
    };
    if (token.size() > kMaxTokenSize)
        return bad("size", std::to_string(token.size()) + " characters (limit " + std::to_string(kMaxTokenSize) + ")");
    const auto d1 = token.find('.');
    const auto d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d1 == std::string_view::npos || d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
        return bad("segments", "not exactly three dot-separated segments");
    const std::string_view h64 = token.substr(0, d1), p64 = token.substr(d1 + 1, d2 - d1 - 1),
                           s64 = token.substr(d2 + 1);
    // An empty signature (alg "none") is judged by the header check below.
    if (h64.empty() || p64.empty()) return bad("segments", "an empty header or payload segment");
    auto h = base64url_decode(h64), p = base64url_decode(p64), s = base64url_decode(s64);
    if (!h || !p || !s) return bad("base64", "a segment is not strict unpadded base64url");
    DecodedToken out;
    out.header_json = *h;
    out.payload_json = *p;
    out.signature = *s;
    out.signing_input = std::string(token.substr(0, d2));
    std::string r, d;
    auto hj = strict_json(*h, true, &r, &d);
    if (!hj) return bad(r == "json" ? "json" : "duplicate-member", "header: " + d);
    for (const char* forbidden : {"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "kid", "b64", "zip"})
        if (hj->contains(forbidden)) return bad("header-param", std::string("header carries \"") + forbidden + "\"");
    auto alg = hj->find("alg");
    if (alg == hj->end() || !alg->is_string() || *alg != "EdDSA") {
        std::string shown = alg != hj->end() && alg->is_string() ? alg->get<std::string>().substr(0, 20) : "?";
        return bad("alg", "algorithm \"" + shown + "\" (only EdDSA is accepted)");
    }
    auto typ = hj->find("typ");
    if (hj->size() != 2 || typ == hj->end() || !typ->is_string() || *typ != "JWT")
        return bad("header", "header is not exactly {typ: JWT, alg: EdDSA}");
    auto pj = strict_json(*p, false, &r, &d);
    if (!pj) return bad(r == "json" ? "json" : "duplicate-member", "payload: " + d);
    if (std::string why = claims_from(*pj, out.claims); !why.empty()) return bad("claims", "bad claim: " + why);
    if (!valid_thumbprint(out.claims.key_thumbprint))
        return bad("thumbprint", "keyThumbprint is not 43 base64url characters");
    if (out.signature.size() != 64) return bad("signature", "signature is not 64 bytes");
    return out;
}

// verify_token - decode, find the key, check the signature, then the claims.
VerifyResult verify_token(std::string_view token, const VerifyInput& in) {
    std::string reason, detail;
    auto dec = decode_token(token, &reason, &detail);
    if (!dec) return fail(reason, detail);
    const TokenClaims& c = dec->claims;
    const PublicKey* key = in.keys ? in.keys->find(c.key_thumbprint) : nullptr;
    if (!key) return fail("unknown-key", "no trusted key " + c.key_thumbprint, c);
    if (!key->verify(dec->signing_input, dec->signature))
        return fail("signature", "Ed25519 signature does not verify with " + c.key_thumbprint, c);
    if (c.created > in.now + in.skew)
        return fail("future", "created " + std::to_string(c.created - in.now) + "s in the future", c);
    if (c.expires <= in.now) return fail("expired", "expired " + std::to_string(in.now - c.expires) + "s ago", c);
    if (in.scan_versions.empty()) return fail("no-scanner", "no healthy scanner to compare scanVersion with", c);
    bool current = false;
    for (const auto& v : in.scan_versions) current = current || same_bytes(v, c.scan_version);
    if (!current) return fail("scan-version", "scanVersion \"" + c.scan_version + "\" is not a current scanner's", c);
    if (!same_bytes(c.verification_hash, in.verification_hash))
        return fail("hash", "verificationHash differs: the parts changed", c);
    VerifyResult ok;
    ok.ok = true;
    ok.claims = c;
    return ok;
}

// verify_token_headers - one header value exactly, then verify_token.
VerifyResult verify_token_headers(const std::vector<std::string>& values, const VerifyInput& in) {
    if (values.empty()) return fail("none", "no token header");
    if (values.size() > 1) return fail("multiple", std::to_string(values.size()) + " token headers");
    return verify_token(unfold_token(values.front()), in);
}

// unfold_token - drop CR, LF, SP and TAB (folding; never part of a token).
std::string unfold_token(std::string_view value) {
    std::string out;
    out.reserve(std::min(value.size(), kMaxTokenSize + 1));
    for (char ch : value) {
        if (ch == '\r' || ch == '\n' || ch == ' ' || ch == '\t') continue;
        out += ch;
        if (out.size() > kMaxTokenSize) break; // long enough to be refused by size
    }
    return out;
}

// fold_token - pieces of width characters joined by "\n\t".
std::string fold_token(std::string_view token, std::size_t width) {
    if (width == 0 || width > 900) width = 76;
    std::string out;
    for (std::size_t i = 0; i < token.size(); i += width) {
        if (i) out += "\n\t";
        out.append(token.substr(i, width));
    }
    return out;
}

} // namespace icapm
