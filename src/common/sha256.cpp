// NAME
//   sha256.cpp - incremental SHA-256 over OpenSSL's EVP interface
// DIAGNOSTICS
//   OpenSSL failures here mean a broken library: they throw
//   std::runtime_error, which callers treat as a scan failure.
#include "icap-milter/common/sha256.hpp"

#include <openssl/evp.h>

#include <stdexcept>

namespace icapm {

namespace {

// sha256_md - SHA-256 fetched once for the process: with EVP_sha256()
// OpenSSL 3 looks the implementation up again at every init (a lock and
// a table search per part and per message).
const EVP_MD* sha256_md() {
    static const EVP_MD* const md = [] {
        const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
        return fetched ? fetched : EVP_sha256();
    }();
    return md;
}

} // namespace

// CtxFree - release an EVP_MD_CTX.
void Sha256::CtxFree::operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }

// Sha256 - a fresh context, ready for update().
Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr) != 1)
        throw std::runtime_error("sha256: EVP init failed");
}

// update - feed bytes.
void Sha256::update(std::string_view data) {
    if (!data.empty() && EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) != 1)
        throw std::runtime_error("sha256: EVP update failed");
}

// finish - produce the digest and reset for reuse.
Digest Sha256::finish() {
    Digest d{};
    unsigned len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), d.data(), &len) != 1 || len != d.size() ||
        EVP_DigestInit_ex(ctx_.get(), sha256_md(), nullptr) != 1)
        throw std::runtime_error("sha256: EVP final failed");
    return d;
}

// to_hex - lower-case hex digits.
std::string to_hex(const Digest& d) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(d.size() * 2);
    for (unsigned char c : d) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

} // namespace icapm
