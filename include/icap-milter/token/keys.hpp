// NAME
//   keys.hpp - Ed25519 keys for scan tokens: our own, and those we trust
// SUMMARY
//   A key is named by its RFC 7638 JWK thumbprint: base64url(SHA-256 of
//   {"crv":"Ed25519","kty":"OKP","x":"<public key>"}), 43 characters.
//   SigningKey holds our private key (read once, before the privilege
//   drop, from a file no group or other user may read); KeyStore maps
//   thumbprints to trusted public keys (one PEM file per server in
//   TrustedKeysDirectory, plus our own public key).
// DIAGNOSTICS
//   Loading throws std::runtime_error naming the file and the reason
//   (mode, size, not PEM, not Ed25519). Secrets never appear in messages.
#pragma once

#include "icap-milter/config/config.hpp"

#include <map>
#include <memory>
#include <string>
#include <string_view>

typedef struct evp_pkey_st EVP_PKEY;

namespace icapm {

// SecretString - bytes that are wiped when dropped; never copied.
class SecretString {
public:
    SecretString() = default;
    explicit SecretString(std::string s) : s_(std::move(s)) {}
    ~SecretString();
    SecretString(SecretString&& o) noexcept : s_(std::move(o.s_)) { o.s_.clear(); }
    SecretString& operator=(SecretString&&) = delete;
    SecretString(const SecretString&) = delete;
    SecretString& operator=(const SecretString&) = delete;
    const std::string& str() const noexcept { return s_; }
    std::string& str() noexcept { return s_; }

private:
    std::string s_;
};

// PkeyFree - deleter for EVP_PKEY.
struct PkeyFree {
    void operator()(EVP_PKEY* p) const noexcept;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// kMaxKeyFileSize - no PEM key file we read may be larger.
constexpr std::size_t kMaxKeyFileSize = 16 * 1024;

// PublicKey - an Ed25519 public key and its thumbprint.
class PublicKey {
public:
    // from_pem - a "PUBLIC KEY" PEM; throws unless it is Ed25519.
    static PublicKey from_pem(std::string_view pem, std::string source);
    // verify - true when sig is a valid Ed25519 signature of data.
    bool verify(std::string_view data, std::string_view sig) const;
    // raw - the 32 public key bytes.
    const std::string& raw() const noexcept { return raw_; }
    // thumbprint - RFC 7638 JWK thumbprint (base64url SHA-256).
    const std::string& thumbprint() const noexcept { return thumbprint_; }
    // source - the file it came from ("own key" for ours).
    const std::string& source() const noexcept { return source_; }
    // pem - the key as a "PUBLIC KEY" PEM block.
    std::string pem() const;

    explicit PublicKey(PkeyPtr key, std::string source); // takes an Ed25519 key

private:
    PkeyPtr key_;
    std::string raw_, thumbprint_, source_;
};

// SigningKey - our Ed25519 private key. Non-copyable; OpenSSL holds the
// secret and frees it with its own cleansing allocator.
class SigningKey {
public:
    // load_file - read a private key PEM; refuses a file group or others
    // may read or write, a non-regular file, and anything not Ed25519.
    static SigningKey load_file(const std::string& path);
    // from_pem - parse a "PRIVATE KEY" PEM held in memory.
    static SigningKey from_pem(std::string_view pem, std::string source);
    // generate - a fresh random key.
    static SigningKey generate();
    // sign - the 64-byte Ed25519 signature of data.
    std::string sign(std::string_view data) const;
    // public_key - the matching public key.
    const PublicKey& public_key() const noexcept { return *public_; }
    // private_pem - the key as a PKCS#8 PEM (for keygen), wiped when dropped.
    SecretString private_pem() const;

    SigningKey(SigningKey&&) noexcept = default;
    SigningKey(const SigningKey&) = delete;
    SigningKey& operator=(const SigningKey&) = delete;
    SigningKey& operator=(SigningKey&&) = delete;

private:
    explicit SigningKey(PkeyPtr key, std::string source);
    PkeyPtr key_;
    std::unique_ptr<PublicKey> public_;
};

// KeyStore - trusted public keys, found only by thumbprint.
class KeyStore {
public:
    // add - trust key (a second copy of the same key is ignored).
    void add(std::shared_ptr<const PublicKey> key);
    // load_directory - trust every *.pem / *.pub file in dir; throws on
    // any unreadable or non-Ed25519 file (a broken trust list is loud).
    void load_directory(const std::string& dir);
    // find - the key with this thumbprint, or nullptr.
    const PublicKey* find(std::string_view thumbprint) const;
    std::size_t size() const noexcept { return keys_.size(); }

private:
    std::map<std::string, std::shared_ptr<const PublicKey>, std::less<>> keys_;
};

// jwk_thumbprint - the RFC 7638 thumbprint of a raw 32-byte Ed25519 key.
std::string jwk_thumbprint(std::string_view raw_public_key);

// valid_thumbprint - exactly 43 base64url characters (no path characters).
bool valid_thumbprint(std::string_view text) noexcept;

// TokenKeys - what the token feature needs, loaded once before the drop.
struct TokenKeys {
    std::shared_ptr<const SigningKey> own;   // null: we sign nothing
    std::shared_ptr<const KeyStore> trusted; // own public key included
    // enabled - tokens are on when we can sign or verify.
    bool enabled() const noexcept { return own || (trusted && trusted->size() > 0); }
};

// load_token_keys - TokenSigningKey and TrustedKeysDirectory of config.
// Throws std::runtime_error on any problem.
TokenKeys load_token_keys(const Config& config);

// reload_trusted_keys - new trusted set for a reload, keeping own.
TokenKeys reload_trusted_keys(const Config& config, const TokenKeys& running);

} // namespace icapm
