// NAME
//   tls.hpp - the shared OpenSSL client context
// SUMMARY
//   One SSL_CTX for all scanner connections: verification on by default
//   (chain, host name, SNI), TLS 1.2 or later. tls_connect() opens one
//   verified, non-blocking TLS connection; TlsResumption keeps the last
//   session of a server so a reconnect can resume instead of a full
//   handshake. The CA file, client certificate and key may be read ahead
//   of time (before the privilege drop, and again on reload) into a
//   TlsFiles table, which a TlsContext then takes the contents from
//   instead of opening the paths.
// DIAGNOSTICS
//   The constructor throws std::runtime_error with OpenSSL's reason when
//   the CA file, certificate or key cannot be loaded, or the settings are
//   invalid. Turning verification off, or accepting expired certificates,
//   logs a warning. tls_connect()
//   returns nullptr with the handshake or verification failure in *error.
#pragma once

#include "icap-milter/net/socket.hpp"

#include <cstdint>
#include <ctime>
#include <map>
#include <memory>
#include <optional>
#include <string>

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;

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
    bool verify_hostname = true; // check the name (or IP) against the certificate
    bool accept_expired = false; // skip only the expiry check (chain and name still verified)
};

// TlsFiles - contents of TLS files (PEM) read ahead of use, by path. The
// bytes (a private key among them) are wiped when the table goes.
class TlsFiles {
public:
    TlsFiles() = default;
    ~TlsFiles();
    TlsFiles(const TlsFiles&) = delete;
    TlsFiles& operator=(const TlsFiles&) = delete;
    // set - remember contents for path (replacing what was there).
    void set(const std::string& path, std::string contents);
    // find - the contents read for path, or nullptr.
    const std::string* find(const std::string& path) const;
    // size - how many files the table holds.
    std::size_t size() const noexcept { return by_path_.size(); }

private:
    std::map<std::string, std::string> by_path_;
};

// TlsFileRead - read_tls_file's answer: the contents, or errno when error != 0.
struct TlsFileRead {
    std::string contents;
    int error = 0;
};

// read_tls_file - a whole PEM file (regular file, at most 4 MiB; EFBIG
// past that), read as the process is now.
TlsFileRead read_tls_file(const std::string& path);

// TlsPeerInfo - what an operator wants to know about a TLS connection.
struct TlsPeerInfo {
    std::string protocol;     // "TLSv1.3"
    std::string cipher;
    std::string subject;      // one line, RFC 2253
    std::string issuer;
    std::time_t not_after = 0; // certificate expiry (UTC), 0 if unknown
    bool resumed = false;
    // days_left - whole days until not_after from now (negative: expired).
    long days_left(std::time_t now) const noexcept;
};

// TlsContext - owns the SSL_CTX; thread-safe to share once built.
class TlsContext {
public:
    // TlsContext - the CA file, client certificate and key come from
    // files when it holds their path (read before the privilege drop),
    // else from the paths now; files may be null.
    explicit TlsContext(const TlsSettings& settings, const TlsFiles* files = nullptr);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    SSL_CTX* get() const noexcept { return ctx_.get(); }
    bool verify() const noexcept { return verify_; }
    bool verify_hostname() const noexcept { return verify_hostname_; }
    bool accept_expired() const noexcept { return accept_expired_; }
    // client_cert - true when a client certificate is presented (mutual TLS).
    bool client_cert() const noexcept { return client_cert_; }

private:
    struct CtxFree { void operator()(SSL_CTX* p) const noexcept; };
    std::unique_ptr<SSL_CTX, CtxFree> ctx_;
    bool verify_ = true;
    bool verify_hostname_ = true;
    bool accept_expired_ = false;
    bool client_cert_ = false;
};

// TlsResumption - the last resumable session of one server. Not shared
// between threads: each IcapSession owns one.
class TlsResumption {
public:
    // store - keep session (a new reference is taken) if it is resumable.
    void store(SSL_SESSION* session) noexcept;
    // get - the kept session, or nullptr.
    SSL_SESSION* get() const noexcept { return session_.get(); }
    // clear - forget it (e.g. after a verification failure).
    void clear() noexcept { session_.reset(); }

private:
    struct SessionFree { void operator()(SSL_SESSION* p) const noexcept; };
    std::unique_ptr<SSL_SESSION, SessionFree> session_;
};

// tls_peer_info - details of a TLS connection; nullopt for plain TCP.
std::optional<TlsPeerInfo> tls_peer_info(const Connection& c);

// tls_connect - TCP connect, then a TLS handshake before deadline with
// SNI (names only), host name or IP verification when ctx verifies, and
// resumption from resume (may be null; not offered with a client
// certificate: c-icap, which sets no session id context, fails every
// resumption of a verified client with an internal_error alert).
// nullptr and *error on failure.
std::unique_ptr<Connection> tls_connect(const TlsContext& ctx, const std::string& host,
                                        std::uint16_t port, Deadline deadline,
                                        TlsResumption* resume, std::string* error);

} // namespace icapm
