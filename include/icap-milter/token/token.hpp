// NAME
//   token.hpp - the scan token: a compact JWS (EdDSA) over what was scanned
// SUMMARY
//   A message scanned clean here carries header.payload.signature, each
//   part strict base64url, header exactly {"typ":"JWT","alg":"EdDSA"}.
//   The payload names the signer (keyThumbprint), the scanner signature
//   (scanVersion) and the canonical hash of every part (verificationHash,
//   see parts_hash). verify_token() checks all of it the RFC 8725 way:
//   one algorithm, the key found only by thumbprint in the local map,
//   strict JSON (duplicate members refused), times with a skew, the
//   scanner signature and the hash; the first failure is the reason.
// DIAGNOSTICS
//   verify_token never throws for bad input; it returns a short reason
//   word ("alg", "signature", "hash", ...) for the counters and a detail
//   for the log. encode_token throws std::runtime_error on OpenSSL failure.
#pragma once

#include "icap-milter/mime/scan_item.hpp"
#include "icap-milter/token/keys.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// kMaxTokenSize - a longer token (unfolded) is refused unread. A real one
// is about 600 characters.
constexpr std::size_t kMaxTokenSize = 4096;
// kTokenVersion - the payload's "version".
constexpr int kTokenVersion = 1;

// TokenClaims - the payload, member names as in DESIGN.md.
struct TokenClaims {
    int version = kTokenVersion;     // "version"
    std::string issuer;              // "issuer" ("icap-milter")
    std::string server;              // "server": the signing host
    std::int64_t created = 0;        // "created": Unix seconds
    std::int64_t expires = 0;        // "exp": Unix seconds
    std::string scan_version;        // "scanVersion": scanner ISTag
    std::string config_name;         // "configName"
    std::string config_id;           // "configID": hash of the signer's settings
    std::string verification_hash;   // "verificationHash": parts_hash()
    std::string key_thumbprint;      // "keyThumbprint": RFC 7638
    std::string hash_algorithm = "SHA256"; // "hashAlgorithm"
};

// parts_hash - base64url SHA-256 over the canonical form of the walk:
// every item in MIME order (part id, content type, transfer encoding,
// disposition, filename, decoded size, decoded SHA-256, scannable flag),
// then the top-level preamble and epilogue; every field length-prefixed.
// The whole-message view (part "0") is left out: it holds the headers
// that every hop changes, and the parts cover its bytes.
std::string parts_hash(const WalkResult& walk);

// encode_token - sign claims (keyThumbprint is set from key) into a token.
std::string encode_token(TokenClaims claims, const SigningKey& key);

// DecodedToken - a token taken apart (signature not checked).
struct DecodedToken {
    std::string header_json;
    std::string payload_json;
    TokenClaims claims;
    std::string signing_input;  // "header.payload" exactly as received
    std::string signature;      // 64 raw bytes
};

// decode_token - the structural checks (size, segments, base64url, strict
// JSON, header, claim types). nullopt and *reason / *detail on failure.
std::optional<DecodedToken> decode_token(std::string_view token, std::string* reason, std::string* detail);

// VerifyInput - what the verifier compares the token with.
struct VerifyInput {
    const KeyStore* keys = nullptr;
    std::vector<std::string> scan_versions; // current ISTags of healthy scanners
    std::string verification_hash;          // parts_hash() of the message as received
    std::int64_t now = 0;                   // Unix seconds
    std::int64_t skew = 300;                // seconds allowed into the future
};

// VerifyResult - ok, or the reason it failed.
struct VerifyResult {
    bool ok = false;
    std::string reason;   // short word for Token.Rejected counts
    std::string detail;   // sanitisable text for the log
    TokenClaims claims;   // whatever was decoded
};

// verify_token - every check, in order; the first failure is returned.
VerifyResult verify_token(std::string_view token, const VerifyInput& in);

// verify_token_headers - verify the values of every token header of a
// message: more than one is refused as "multiple" (all are to be removed).
VerifyResult verify_token_headers(const std::vector<std::string>& values, const VerifyInput& in);

// unfold_token - the header value without the folding whitespace.
std::string unfold_token(std::string_view value);

// fold_token - the token as a header value folded for smfi_addheader
// ("\n\t" between pieces of width characters), so every line of the
// header stays far below the 998-character limit.
std::string fold_token(std::string_view token, std::size_t width = 76);

} // namespace icapm
