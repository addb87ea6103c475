// NAME
//   tls.hpp - the shared OpenSSL client context
// SUMMARY
//   One SSL_CTX for all scanner connections: verification on by default
//   (chain, host name, SNI), TLS 1.2 or later.
// DIAGNOSTICS
//   The constructor throws std::runtime_error with OpenSSL's reason when
//   the CA file, certificate or key cannot be loaded.
#pragma once

#include <memory>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;

namespace icapm {

// TlsSettings - what the config says about TLS to scanners.
struct TlsSettings {
    std::string ca_file;      // PEM bundle; empty = system default paths
    std::string ca_path;      // hashed directory; empty = none
    bool verify = true;       // verify chain and host name
    std::string min_version = "1.2"; // "1.2" or "1.3"
    std::string client_cert;  // PEM, for mutual TLS (optional)
    std::string client_key;   // PEM (optional)
    std::string ciphers;      // OpenSSL cipher list (optional)
};

// TlsContext - owns the SSL_CTX; thread-safe to share once built.
class TlsContext {
public:
    explicit TlsContext(const TlsSettings& settings);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    SSL_CTX* get() const noexcept { return ctx_.get(); }
    bool verify() const noexcept { return verify_; }

private:
    struct CtxFree { void operator()(SSL_CTX* p) const noexcept; };
    std::unique_ptr<SSL_CTX, CtxFree> ctx_;
    bool verify_ = true;
};

} // namespace icapm
