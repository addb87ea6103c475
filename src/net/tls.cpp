// NAME
//   tls.cpp - OpenSSL client context and non-blocking TLS connections
// SUMMARY
//   TlsContext builds the one SSL_CTX: TLS 1.2+ (or 1.3), peer
//   verification on unless the config turns it off, CA file / directory
//   or the system store, optional client certificate and cipher list.
//   tls_connect() adds per connection what the context cannot know: SNI
//   (host names only, never IP literals), the expected host name
//   (SSL_set1_host, no partial wildcards) or IP address, and a session to
//   resume. The handshake and all transfers are non-blocking and driven
//   by poll() with the caller's deadline, in both directions.
//   Each OpenSSL object has exactly one owner: SSL_CTX in TlsContext,
//   SSL in TlsConnection, the kept SSL_SESSION in TlsResumption.
// DIAGNOSTICS
//   Configuration errors throw std::runtime_error with OpenSSL's reasons.
//   Handshake failures name the verification error when there is one.
//   OpenSSL writes to the socket with write(), so SIGPIPE is held off
//   around every SSL call unless the process already ignores it.
#include "icap-milter/net/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace icapm {

namespace {

// ssl_errors - drain OpenSSL's thread error queue into one line.
std::string ssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown TLS error" : out;
}

// SslFree - release an SSL object.
struct SslFree {
    void operator()(SSL* p) const noexcept { SSL_free(p); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// SigpipeGuard - blocks SIGPIPE in this thread for one OpenSSL call and
// swallows one it raised, so a server closing mid-write is an error
// return instead of a dead process.
class SigpipeGuard {
public:
    SigpipeGuard() noexcept {
        struct sigaction sa {};
        if (::sigaction(SIGPIPE, nullptr, &sa) == 0 && sa.sa_handler == SIG_IGN) return;
        sigemptyset(&pipe_);
        sigaddset(&pipe_, SIGPIPE);
        if (::pthread_sigmask(SIG_BLOCK, &pipe_, &old_) != 0) return;
        active_ = true;
        sigset_t pending;
        was_pending_ = ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    }
    ~SigpipeGuard() {
        if (!active_) return;
        int saved = errno;
        sigset_t pending;
        if (!was_pending_ && ::sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1) {
            timespec zero{};
            while (::sigtimedwait(&pipe_, nullptr, &zero) < 0 && errno == EINTR) {
            }
        }
        ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
        errno = saved;
    }
    SigpipeGuard(const SigpipeGuard&) = delete;
    SigpipeGuard& operator=(const SigpipeGuard&) = delete;

private:
    sigset_t pipe_{}, old_{};
    bool active_ = false;
    bool was_pending_ = false;
};

// name_line - an X509 name as one RFC 2253 line, bounded.
std::string name_line(const X509_NAME* name) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) return {};
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return n > 0 ? std::string(data, static_cast<std::size_t>(std::min<long>(n, 1024))) : std::string();
}

// accept_expired_cb - verify callback that forgives only an expired
// certificate: every other chain or host-name error still fails.
int accept_expired_cb(int ok, X509_STORE_CTX* store) {
    if (ok) return 1;
    return X509_STORE_CTX_get_error(store) == X509_V_ERR_CERT_HAS_EXPIRED ? 1 : 0;
}

// is_ip_literal - IPv4 or IPv6 address text (no SNI, IP SAN check).
bool is_ip_literal(const std::string& host) {
    unsigned char buf[sizeof(in6_addr)];
    return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// TlsConnection - an established TLS session over a non-blocking socket.
class TlsConnection final : public Connection {
public:
    TlsConnection(UniqueFd fd, SslPtr ssl) noexcept : fd_(std::move(fd)), ssl_(std::move(ssl)) {}

    // read_some - SSL_read without waiting.
    IoResult read_some(std::span<char> out) override {
        int n, err;
        {
            SigpipeGuard guard;
            ERR_clear_error();
            n = SSL_read(ssl_.get(), out.data(), static_cast<int>(std::min<std::size_t>(out.size(), 1 << 30)));
            err = errno;
        }
        if (n > 0) return IoResult{IoStatus::Ok, static_cast<std::size_t>(n), 0, {}};
        return map_error(n, err, "TLS read");
    }

    // write_some - SSL_write without waiting (partial writes enabled).
    IoResult write_some(std::string_view data) override {
        int n, err;
        {
            SigpipeGuard guard;
            ERR_clear_error();
            n = SSL_write(ssl_.get(), data.data(), static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30)));
            err = errno;
        }
        if (n > 0) return IoResult{IoStatus::Ok, static_cast<std::size_t>(n), 0, {}};
        return map_error(n, err, "TLS write");
    }

    // has_buffered_input - decrypted bytes poll() cannot see.
    bool has_buffered_input() const noexcept override { return SSL_pending(ssl_.get()) > 0; }

    int fd() const noexcept override { return fd_.get(); }

    // shutdown - send close_notify once; never wait for the peer's.
    void shutdown() noexcept override {
        if (broken_) return;
        SigpipeGuard guard;
        ERR_clear_error();
        (void)SSL_shutdown(ssl_.get());
        ERR_clear_error();
    }

    // keep_tls_session - remember this session for the next connection.
    void keep_tls_session(TlsResumption& slot) noexcept override {
        if (!broken_) slot.store(SSL_get0_session(ssl_.get()));
    }

    // peer_info - protocol, cipher and the peer certificate's names and expiry.
    TlsPeerInfo peer_info() const {
        TlsPeerInfo info;
        info.protocol = SSL_get_version(ssl_.get());
        info.cipher = SSL_get_cipher_name(ssl_.get());
        info.resumed = SSL_session_reused(ssl_.get()) == 1;
        const X509* cert = SSL_get0_peer_certificate(ssl_.get());
        if (!cert) return info;
        info.subject = name_line(X509_get_subject_name(cert));
        info.issuer = name_line(X509_get_issuer_name(cert));
        tm t{};
        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &t) == 1) info.not_after = timegm(&t);
        return info;
    }

    // describe - protocol, cipher, and whether the session was resumed.
    std::string describe() const override {
        return fmt::format("{} {}{}", SSL_get_version(ssl_.get()), SSL_get_cipher_name(ssl_.get()),
                           SSL_session_reused(ssl_.get()) ? " resumed" : "");
    }

private:
    // map_error - SSL_get_error() to an IoResult.
    IoResult map_error(int ret, int saved_errno, const char* op) {
        switch (SSL_get_error(ssl_.get(), ret)) {
        case SSL_ERROR_WANT_READ: return IoResult{IoStatus::WantRead, 0, 0, {}};
        case SSL_ERROR_WANT_WRITE: return IoResult{IoStatus::WantWrite, 0, 0, {}};
        case SSL_ERROR_ZERO_RETURN: return IoResult{IoStatus::Eof, 0, 0, "TLS connection closed by peer"};
        case SSL_ERROR_SYSCALL:
            broken_ = true;
            if (saved_errno == 0) return IoResult{IoStatus::Eof, 0, 0, "connection closed by peer"};
            return IoResult{IoStatus::Error, 0, saved_errno, fmt::format("{}: {}", op, std::strerror(saved_errno))};
        default:
            broken_ = true;
            return IoResult{IoStatus::Error, 0, 0, fmt::format("{}: {}", op, ssl_errors())};
        }
    }

    UniqueFd fd_;   // declared first: destroyed after the SSL that uses it
    SslPtr ssl_;
    bool broken_ = false;
};

} // namespace

// CtxFree - release the SSL_CTX.
void TlsContext::CtxFree::operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }

// SessionFree - drop our reference to a kept session.
void TlsResumption::SessionFree::operator()(SSL_SESSION* p) const noexcept { SSL_SESSION_free(p); }

// store - keep a new reference to session when it can be resumed.
void TlsResumption::store(SSL_SESSION* session) noexcept {
    if (!session || !SSL_SESSION_is_resumable(session)) return;
    if (session == session_.get()) return;
    if (SSL_SESSION_up_ref(session) != 1) return;
    session_.reset(session);
}

// TlsContext - build and check the shared client context.
TlsContext::TlsContext(const TlsSettings& s)
    : ctx_(SSL_CTX_new(TLS_client_method())), verify_(s.verify), verify_hostname_(s.verify_hostname),
      accept_expired_(s.accept_expired) {
    if (!ctx_) throw std::runtime_error("TLS: cannot create context: " + ssl_errors());
    SSL_CTX* c = ctx_.get();
    int min_version = 0;
    if (s.min_version == "1.2")
        min_version = TLS1_2_VERSION;
    else if (s.min_version == "1.3")
        min_version = TLS1_3_VERSION;
    else
        throw std::runtime_error("TLS: minimum version must be 1.2 or 1.3, not \"" + s.min_version + "\"");
    if (SSL_CTX_set_min_proto_version(c, min_version) != 1)
        throw std::runtime_error("TLS: cannot set minimum version: " + ssl_errors());
    // Servers may close without close_notify after a complete ICAP reply;
    // ICAP's own framing detects truncation, so that is a plain EOF.
    SSL_CTX_set_options(c, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    // Partial writes and a moving buffer let the session resend from its
    // own buffer after WANT_WRITE while it reads in between.
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // Client-side session tickets are kept per IcapSession, not in the context.
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);

    if (s.verify) {
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, s.accept_expired ? accept_expired_cb : nullptr);
        if (s.accept_expired)
            spdlog::warn("TLS to ICAP servers: expired certificates are ACCEPTED (TlsAcceptExpired); "
                         "the chain and host name are still verified");
        if (!s.verify_hostname)
            spdlog::warn("TLS to ICAP servers: host name verification is off (TlsVerifyHostname no); "
                         "any certificate from a trusted CA is accepted");
        if (!s.ca_file.empty() || !s.ca_path.empty()) {
            if (SSL_CTX_load_verify_locations(c, s.ca_file.empty() ? nullptr : s.ca_file.c_str(),
                                              s.ca_path.empty() ? nullptr : s.ca_path.c_str()) != 1)
                throw std::runtime_error(fmt::format("TLS: cannot load CA file \"{}\" / path \"{}\": {}",
                                                     s.ca_file, s.ca_path, ssl_errors()));
        } else if (SSL_CTX_set_default_verify_paths(c) != 1) {
            throw std::runtime_error("TLS: cannot load the system CA store: " + ssl_errors());
        }
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
        spdlog::warn("TLS to ICAP servers: certificate and host name verification is DISABLED; "
                     "anyone on the path can read and alter scans");
    }
    if (!s.ciphers.empty() && SSL_CTX_set_cipher_list(c, s.ciphers.c_str()) != 1)
        throw std::runtime_error(fmt::format("TLS: bad cipher list \"{}\": {}", s.ciphers, ssl_errors()));
    if (s.client_cert.empty() != s.client_key.empty())
        throw std::runtime_error("TLS: client certificate and key must be given together");
    if (!s.client_cert.empty()) {
        if (SSL_CTX_use_certificate_chain_file(c, s.client_cert.c_str()) != 1)
            throw std::runtime_error(fmt::format("TLS: cannot load client certificate \"{}\": {}",
                                                 s.client_cert, ssl_errors()));
        if (SSL_CTX_use_PrivateKey_file(c, s.client_key.c_str(), SSL_FILETYPE_PEM) != 1)
            throw std::runtime_error(fmt::format("TLS: cannot load client key \"{}\": {}", s.client_key,
                                                 ssl_errors()));
        if (SSL_CTX_check_private_key(c) != 1)
            throw std::runtime_error("TLS: client key does not match its certificate: " + ssl_errors());
    }
}

// ~TlsContext - the SSL_CTX goes with ctx_.
TlsContext::~TlsContext() = default;

// days_left - whole days to expiry, rounded down.
long TlsPeerInfo::days_left(std::time_t now) const noexcept {
    const long diff = static_cast<long>(not_after - now);
    return diff >= 0 ? diff / 86400 : -((-diff + 86399) / 86400);
}

// tls_peer_info - the details of a TLS connection, if c is one.
std::optional<TlsPeerInfo> tls_peer_info(const Connection& c) {
    if (auto* t = dynamic_cast<const TlsConnection*>(&c)) return t->peer_info();
    return std::nullopt;
}

// tls_connect - connect, configure per-host checks, handshake by deadline.
std::unique_ptr<Connection> tls_connect(const TlsContext& ctx, const std::string& host,
                                        std::uint16_t port, Deadline deadline,
                                        TlsResumption* resume, std::string* error) {
    UniqueFd fd = tcp_connect(host, port, deadline, error);
    if (!fd) return nullptr;
    ERR_clear_error();
    SslPtr ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) {
        *error = fmt::format("{}:{}: TLS setup: {}", host, port, ssl_errors());
        return nullptr;
    }
    const bool ip = is_ip_literal(host);
    // RFC 6066 forbids IP literals in SNI.
    if (!ip && SSL_set_tlsext_host_name(ssl.get(), host.c_str()) != 1) {
        *error = fmt::format("{}:{}: TLS SNI: {}", host, port, ssl_errors());
        return nullptr;
    }
    if (ctx.verify() && ctx.verify_hostname()) {
        bool ok;
        if (ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str()) == 1;
        } else {
            SSL_set_hostflags(ssl.get(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl.get(), host.c_str()) == 1;
        }
        if (!ok) {
            *error = fmt::format("{}:{}: TLS host check setup: {}", host, port, ssl_errors());
            return nullptr;
        }
    }
    if (resume && resume->get()) (void)SSL_set_session(ssl.get(), resume->get());
    SSL_set_connect_state(ssl.get());

    while (true) {
        int rc, err;
        {
            SigpipeGuard guard;
            ERR_clear_error();
            rc = SSL_do_handshake(ssl.get());
            err = errno;
        }
        if (rc == 1) break;
        short events = 0;
        switch (SSL_get_error(ssl.get(), rc)) {
        case SSL_ERROR_WANT_READ: events = POLLIN; break;
        case SSL_ERROR_WANT_WRITE: events = POLLOUT; break;
        default: {
            long vr = SSL_get_verify_result(ssl.get());
            if (vr != X509_V_OK)
                *error = fmt::format("{}:{}: TLS certificate verification failed: {}", host, port,
                                     X509_verify_cert_error_string(vr));
            else if (ERR_peek_error() == 0)
                *error = fmt::format("{}:{}: TLS handshake: {}", host, port,
                                     err ? std::strerror(err) : "connection closed by peer");
            else
                *error = fmt::format("{}:{}: TLS handshake: {}", host, port, ssl_errors());
            if (resume) resume->clear();
            return nullptr;
        }
        }
        int rev = wait_fd(fd.get(), events, deadline);
        if (rev == 0) {
            *error = fmt::format("{}:{}: TLS handshake timed out", host, port);
            return nullptr;
        }
        if (rev < 0) {
            *error = fmt::format("{}:{}: poll: {}", host, port, std::strerror(errno));
            return nullptr;
        }
    }
    return std::make_unique<TlsConnection>(std::move(fd), std::move(ssl));
}

} // namespace icapm
