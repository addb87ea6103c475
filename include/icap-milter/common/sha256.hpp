// NAME
//   sha256.hpp - incremental SHA-256 (OpenSSL EVP, one owner per context)
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace icapm {

using Digest = std::array<unsigned char, 32>;

class Sha256 {
public:
    Sha256();
    // update - hash more bytes.
    void update(std::string_view data);
    // finish - the digest; the object starts over afterwards.
    Digest finish();

private:
    struct CtxFree { void operator()(EVP_MD_CTX* p) const noexcept; };
    std::unique_ptr<EVP_MD_CTX, CtxFree> ctx_;
};

// to_hex - lower-case hex of a digest.
std::string to_hex(const Digest& d);

} // namespace icapm
