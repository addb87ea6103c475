// NAME
//   keys.cpp - Ed25519 key loading, thumbprints and the trusted key map
// SUMMARY
//   Every OpenSSL object is owned by a unique_ptr with its free function.
//   Private key text is read into a SecretString (wiped on drop) and
//   parsed from a memory BIO; the key file is opened with O_NOFOLLOW and
//   its mode checked on the open descriptor, so the checked file is the
//   read file.
// DIAGNOSTICS
//   std::runtime_error("TokenSigningKey /etc/...: readable by group or
//   others (mode 0640); chmod 600 it"), "... not an Ed25519 key", etc.
#include "icap-milter/token/keys.hpp"

#include "icap-milter/common/sha256.hpp"
#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/token/base64url.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace icapm {

namespace {

struct BioFree {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct MdCtxFree {
    void operator()(EVP_MD_CTX* c) const noexcept { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;
struct DirClose {
    void operator()(DIR* d) const noexcept { closedir(d); }
};

// ossl_error - the last OpenSSL error text (the queue is cleared).
std::string ossl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (!e) return "unknown OpenSSL error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

// mem_bio - a read-only BIO over text (not copied).
BioPtr mem_bio(std::string_view text) {
    if (text.size() > kMaxKeyFileSize) throw std::runtime_error("key text too large");
    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) throw std::runtime_error("BIO_new_mem_buf: " + ossl_error());
    return bio;
}

// bio_text - everything written to a memory BIO.
std::string bio_text(BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return n > 0 && data ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

// read_bounded - a file's bytes from fd (at most kMaxKeyFileSize).
void read_bounded(int fd, std::string& out, const std::string& what) {
    out.resize(kMaxKeyFileSize + 1);
    std::size_t have = 0;
    while (have < out.size()) {
        ssize_t n = ::read(fd, out.data() + have, out.size() - have);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(what + ": read: " + std::strerror(errno));
        if (n == 0) break;
        have += static_cast<std::size_t>(n);
    }
    if (have > kMaxKeyFileSize) throw std::runtime_error(what + ": larger than a key file can be");
    // Only the first `have` bytes ever held file content; the owner wipes those.
    out.resize(have);
}

// open_regular - open path read-only without following a final symlink
// (follow_links false) and insist on a regular file.
UniqueFd open_regular(const std::string& path, bool follow_links, struct stat& st, const std::string& what) {
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | (follow_links ? 0 : O_NOFOLLOW);
    UniqueFd fd(::open(path.c_str(), flags));
    if (!fd) throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
    if (::fstat(fd.get(), &st) != 0) throw std::runtime_error(what + " " + path + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) throw std::runtime_error(what + " " + path + ": not a regular file");
    return fd;
}

// is_ed25519 - the key type check every loaded key passes.
bool is_ed25519(EVP_PKEY* k) { return k && EVP_PKEY_get_base_id(k) == EVP_PKEY_ED25519; }

} // namespace

// ~SecretString - wipe before the memory goes back to the allocator.
SecretString::~SecretString() {
    if (!s_.empty()) OPENSSL_cleanse(s_.data(), s_.size());
}

// PkeyFree::operator() - EVP_PKEY_free.
void PkeyFree::operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }

// jwk_thumbprint - RFC 7638: the required members, sorted, no blanks.
std::string jwk_thumbprint(std::string_view raw_public_key) {
    const std::string jwk = R"({"crv":"Ed25519","kty":"OKP","x":")" + base64url_encode(raw_public_key) + "\"}";
    Sha256 h;
    h.update(jwk);
    Digest d = h.finish();
    return base64url_encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

// valid_thumbprint - the only shape a thumbprint has: 43 base64url characters.
bool valid_thumbprint(std::string_view text) noexcept {
    if (text.size() != 43) return false;
    for (unsigned char c : text)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    return true;
}

// PublicKey - take an Ed25519 key; compute its raw bytes and thumbprint.
PublicKey::PublicKey(PkeyPtr key, std::string source) : key_(std::move(key)), source_(std::move(source)) {
    if (!is_ed25519(key_.get())) throw std::runtime_error(source_ + ": not an Ed25519 key");
    unsigned char raw[32];
    std::size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key_.get(), raw, &len) != 1 || len != sizeof raw)
        throw std::runtime_error(source_ + ": cannot read the public key: " + ossl_error());
    raw_.assign(reinterpret_cast<const char*>(raw), len);
    thumbprint_ = jwk_thumbprint(raw_);
}

// from_pem - PEM_read_bio_PUBKEY, Ed25519 only.
PublicKey PublicKey::from_pem(std::string_view pem, std::string source) {
    BioPtr bio = mem_bio(pem);
    PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!key) {
        ERR_clear_error();
        throw std::runtime_error(source + ": not a PEM public key");
    }
    return PublicKey(std::move(key), std::move(source));
}

// verify - one-shot EVP_DigestVerify (Ed25519 hashes internally).
bool PublicKey::verify(std::string_view data, std::string_view sig) const {
    if (sig.size() != 64) return false;
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1) {
        ERR_clear_error();
        return false;
    }
    int rc = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                              reinterpret_cast<const unsigned char*>(data.data()), data.size());
    ERR_clear_error();
    return rc == 1;
}

// pem - PEM_write_bio_PUBKEY into memory.
std::string PublicKey::pem() const {
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_.get()) != 1)
        throw std::runtime_error("cannot write public key: " + ossl_error());
    return bio_text(bio.get());
}

// SigningKey - own the private key and derive its public half.
SigningKey::SigningKey(PkeyPtr key, std::string source) : key_(std::move(key)) {
    if (!is_ed25519(key_.get())) throw std::runtime_error(source + ": not an Ed25519 private key");
    unsigned char raw[32];
    std::size_t len = sizeof raw;
    if (EVP_PKEY_get_raw_public_key(key_.get(), raw, &len) != 1 || len != sizeof raw)
        throw std::runtime_error(source + ": cannot derive the public key: " + ossl_error());
    PkeyPtr pub(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, raw, len));
    if (!pub) throw std::runtime_error(source + ": " + ossl_error());
    public_ = std::make_unique<PublicKey>(std::move(pub), "own key " + source);
}

// from_pem - PEM_read_bio_PrivateKey from memory (no passphrase).
SigningKey SigningKey::from_pem(std::string_view pem, std::string source) {
    BioPtr bio = mem_bio(pem);
    PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("")));
    if (!key) {
        ERR_clear_error();
        throw std::runtime_error(source + ": not a PEM private key (unencrypted PKCS#8 expected)");
    }
    return SigningKey(std::move(key), std::move(source));
}

// load_file - open, check owner-only mode on the descriptor, read, parse.
SigningKey SigningKey::load_file(const std::string& path) {
    struct stat st {};
    UniqueFd fd = open_regular(path, false, st, "TokenSigningKey");
    if (st.st_mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw std::runtime_error("TokenSigningKey " + path + ": readable or writable by group or others (mode " +
                                 mode + "); chmod 600 it");
    }
    SecretString text;
    read_bounded(fd.get(), text.str(), "TokenSigningKey " + path);
    return from_pem(text.str(), path);
}

// generate - EVP_PKEY_Q_keygen for ED25519.
SigningKey SigningKey::generate() {
    PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    if (!key) throw std::runtime_error("Ed25519 key generation failed: " + ossl_error());
    return SigningKey(std::move(key), "generated");
}

// sign - one-shot EVP_DigestSign.
std::string SigningKey::sign(std::string_view data) const {
    MdCtxPtr ctx(EVP_MD_CTX_new());
    std::string sig(64, '\0');
    std::size_t len = sig.size();
    if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_.get()) != 1 ||
        EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
        len != 64)
        throw std::runtime_error("Ed25519 signing failed: " + ossl_error());
    return sig;
}

// private_pem - PKCS#8 PEM through a secure-heap BIO, copied into a SecretString.
SecretString SigningKey::private_pem() const {
    BioPtr bio(BIO_new(BIO_s_secmem()));
    if (!bio || PEM_write_bio_PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw std::runtime_error("cannot write private key: " + ossl_error());
    return SecretString(bio_text(bio.get()));
}

// add - index by thumbprint.
void KeyStore::add(std::shared_ptr<const PublicKey> key) {
    if (key) keys_.emplace(key->thumbprint(), std::move(key));
}

// load_directory - every *.pem and *.pub file, bounded in number.
void KeyStore::load_directory(const std::string& dir) {
    std::unique_ptr<DIR, DirClose> d(::opendir(dir.c_str()));
    if (!d) throw std::runtime_error("TrustedKeysDirectory " + dir + ": " + std::strerror(errno));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d.get())) {
        std::string_view n = e->d_name;
        if (n.empty() || n.front() == '.') continue;
        if (!(n.ends_with(".pem") || n.ends_with(".pub"))) continue;
        if (names.size() >= 10000) throw std::runtime_error("TrustedKeysDirectory " + dir + ": too many files");
        names.emplace_back(n);
    }
    for (const auto& n : names) {
        const std::string path = dir + "/" + n;
        struct stat st {};
        UniqueFd fd = open_regular(path, true, st, "trusted key");
        std::string text;
        read_bounded(fd.get(), text, "trusted key " + path);
        add(std::make_shared<const PublicKey>(PublicKey::from_pem(text, path)));
    }
}

// find - exact thumbprint lookup; malformed names are never looked up.
const PublicKey* KeyStore::find(std::string_view thumbprint) const {
    if (!valid_thumbprint(thumbprint)) return nullptr;
    auto it = keys_.find(thumbprint);
    return it == keys_.end() ? nullptr : it->second.get();
}

// load_token_keys - own key (if configured) and the trusted directory.
TokenKeys load_token_keys(const Config& config) {
    TokenKeys keys;
    auto store = std::make_shared<KeyStore>();
    if (!config.token_signing_key.empty()) {
        auto own = std::make_shared<const SigningKey>(SigningKey::load_file(config.token_signing_key));
        store->add(std::make_shared<const PublicKey>(PublicKey::from_pem(own->public_key().pem(), "own key")));
        keys.own = std::move(own);
    }
    if (!config.trusted_keys_directory.empty()) store->load_directory(config.trusted_keys_directory);
    keys.trusted = std::move(store);
    return keys;
}

// reload_trusted_keys - re-read the trusted directory; our key stays the one read at start.
TokenKeys reload_trusted_keys(const Config& config, const TokenKeys& running) {
    TokenKeys keys;
    keys.own = running.own;
    auto store = std::make_shared<KeyStore>();
    if (keys.own)
        store->add(std::make_shared<const PublicKey>(PublicKey::from_pem(keys.own->public_key().pem(), "own key")));
    if (!config.trusted_keys_directory.empty()) store->load_directory(config.trusted_keys_directory);
    keys.trusted = std::move(store);
    return keys;
}

} // namespace icapm
