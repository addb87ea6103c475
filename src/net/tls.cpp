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
//   PEM files are read into memory and parsed from there, so contents
//   read before the privilege drop (TlsFiles, given to the TlsContext) and files
//   read now take the same path. TlsCAPath is looked up by OpenSSL at
//   each handshake and is therefore read as User.
// DIAGNOSTICS
//   Configuration errors throw std::runtime_error with OpenSSL's reasons.
//   Handshake failures name the verification error when there is one.
//   OpenSSL writes to the socket with write(), so SIGPIPE is held off
//   around every SSL call unless the process already ignores it.
#include "icap-milter/net/tls.hpp"

#include "icap-milter/common/unique_fd.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

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

// The largest PEM file read: system CA bundles are about 200 KiB.
constexpr std::size_t kMaxPemSize = 4u << 20;

// wipe - overwrite a string's bytes (key material) before it is freed.
void wipe(std::string& s) noexcept {
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

// Pem - the text of one PEM file for the constructor; wiped when done.
struct Pem {
    std::string text;
    ~Pem() { wipe(text); }
};

// load_pem - the preloaded contents of path, or the file read now.
void load_pem(const TlsFiles* files, const std::string& path, const char* what, Pem& out) {
    if (files)
        if (const std::string* found = files->find(path)) {
            out.text = *found;
            return;
        }
    TlsFileRead r = read_tls_file(path);
    if (r.error != 0)
        throw std::runtime_error(fmt::format("TLS: cannot read {} \"{}\": {}", what, path, std::strerror(r.error)));
    out.text = std::move(r.contents);
    wipe(r.contents);
}

// BioFree - release a BIO.
struct BioFree {
    void operator()(BIO* p) const noexcept { BIO_free(p); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// X509Free - release a certificate.
struct X509Free {
    void operator()(X509* p) const noexcept { X509_free(p); }
};

// InfoStackFree - release a stack of X509_INFO and its entries.
struct InfoStackFree {
    void operator()(STACK_OF(X509_INFO)* p) const noexcept { sk_X509_INFO_pop_free(p, X509_INFO_free); }
};

// PkeyFree - release a key.
struct PkeyFree {
    void operator()(EVP_PKEY* p) const noexcept { EVP_PKEY_free(p); }
};

// no_password - PEM password callback: encrypted keys are refused, not prompted for.
int no_password(char*, int, int, void*) { return -1; }

// mem_bio - a read-only BIO over text (text must outlive it).
BioPtr mem_bio(const std::string& text) {
    BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) throw std::runtime_error("TLS: out of memory");
    return bio;
}

// pem_at_end - true when the last PEM read stopped at the end of the data
// (no further BEGIN line), which is not an error; clears that error.
bool pem_at_end() {
    const unsigned long e = ERR_peek_last_error();
    if (e != 0 && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) return false;
    ERR_clear_error();
    return true;
}

// load_ca_pem - add every certificate (and CRL) of a PEM bundle to the store.
void load_ca_pem(SSL_CTX* c, const std::string& pem, const std::string& path) {
    BioPtr bio = mem_bio(pem);
    std::unique_ptr<STACK_OF(X509_INFO), InfoStackFree> infos(
        PEM_X509_INFO_read_bio(bio.get(), nullptr, no_password, nullptr));
    if (!infos) throw std::runtime_error(fmt::format("TLS: cannot load CA file \"{}\": {}", path, ssl_errors()));
    X509_STORE* store = SSL_CTX_get_cert_store(c);
    int certs = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos.get()); ++i) {
        const X509_INFO* info = sk_X509_INFO_value(infos.get(), i);
        if (info->x509) {
            if (X509_STORE_add_cert(store, info->x509) != 1)
                throw std::runtime_error(fmt::format("TLS: CA file \"{}\": {}", path, ssl_errors()));
            ++certs;
        }
        if (info->crl && X509_STORE_add_crl(store, info->crl) != 1)
            throw std::runtime_error(fmt::format("TLS: CA file \"{}\": {}", path, ssl_errors()));
    }
    if (certs == 0) throw std::runtime_error(fmt::format("TLS: CA file \"{}\" holds no certificate", path));
}

// load_chain_pem - the client certificate, then any chain certificates after it.
void load_chain_pem(SSL_CTX* c, const std::string& pem, const std::string& path) {
    BioPtr bio = mem_bio(pem);
    std::unique_ptr<X509, X509Free> leaf(PEM_read_bio_X509_AUX(bio.get(), nullptr, no_password, nullptr));
    if (!leaf || SSL_CTX_use_certificate(c, leaf.get()) != 1)
        throw std::runtime_error(fmt::format("TLS: cannot load client certificate \"{}\": {}", path, ssl_errors()));
    if (SSL_CTX_clear_chain_certs(c) != 1)
        throw std::runtime_error("TLS: cannot reset the client certificate chain: " + ssl_errors());
    while (X509* extra = PEM_read_bio_X509(bio.get(), nullptr, no_password, nullptr)) {
        if (SSL_CTX_add0_chain_cert(c, extra) != 1) {
            X509_free(extra);
            throw std::runtime_error(fmt::format("TLS: client certificate chain \"{}\": {}", path, ssl_errors()));
        }
    }
    if (!pem_at_end())
        throw std::runtime_error(fmt::format("TLS: client certificate chain \"{}\": {}", path, ssl_errors()));
}

// load_key_pem - the client's private key (unencrypted PEM).
void load_key_pem(SSL_CTX* c, const std::string& pem, const std::string& path) {
    BioPtr bio = mem_bio(pem);
    std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
    if (!key || SSL_CTX_use_PrivateKey(c, key.get()) != 1)
        throw std::runtime_error(fmt::format("TLS: cannot load client key \"{}\" (encrypted keys are not "
                                             "supported): {}",
                                             path, ssl_errors()));
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
    // ~TlsConnection - always close with close_notify: a bare close leaves
    // "unexpected eof" in c-icap 0.5.10's thread error queue (OpenSSL 3),
    // and that thread then cuts off later TLS uploads (see icap-milter(8)).
    ~TlsConnection() override { shutdown(); }

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
        if (broken_ || notified_) return;
        notified_ = true;
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
    bool notified_ = false; // close_notify sent
};

} // namespace

// ~TlsFiles - wipe every file's bytes.
TlsFiles::~TlsFiles() {
    for (auto& [path, text] : by_path_) wipe(text);
}

// set - keep contents for path; old contents are wiped.
void TlsFiles::set(const std::string& path, std::string contents) {
    auto [it, fresh] = by_path_.try_emplace(path);
    if (!fresh) wipe(it->second);
    it->second = std::move(contents);
}

// find - the contents kept for path.
const std::string* TlsFiles::find(const std::string& path) const {
    auto it = by_path_.find(path);
    return it == by_path_.end() ? nullptr : &it->second;
}

// read_tls_file - open, check it is a bounded regular file, read it whole.
TlsFileRead read_tls_file(const std::string& path) {
    TlsFileRead r;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
        r.error = errno;
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        r.error = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        return r;
    }
    if (static_cast<std::size_t>(st.st_size) > kMaxPemSize) {
        r.error = EFBIG;
        return r;
    }
    r.contents.resize(static_cast<std::size_t>(st.st_size));
    std::size_t got = 0;
    while (got < r.contents.size()) {
        const ssize_t n = ::read(fd.get(), r.contents.data() + got, r.contents.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            r.error = errno;
            wipe(r.contents);
            r.contents.clear();
            return r;
        }
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    r.contents.resize(got);
    return r;
}

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
TlsContext::TlsContext(const TlsSettings& s, const TlsFiles* files)
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
            if (!s.ca_file.empty()) {
                Pem ca;
                load_pem(files, s.ca_file, "CA file", ca);
                load_ca_pem(c, ca.text, s.ca_file);
            }
            if (!s.ca_path.empty() && SSL_CTX_load_verify_locations(c, nullptr, s.ca_path.c_str()) != 1)
                throw std::runtime_error(fmt::format("TLS: cannot use CA path \"{}\": {}", s.ca_path, ssl_errors()));
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
        Pem cert, key;
        load_pem(files, s.client_cert, "client certificate", cert);
        load_chain_pem(c, cert.text, s.client_cert);
        load_pem(files, s.client_key, "client key", key);
        load_key_pem(c, key.text, s.client_key);
        if (SSL_CTX_check_private_key(c) != 1)
            throw std::runtime_error("TLS: client key does not match its certificate: " + ssl_errors());
        client_cert_ = true;
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
    // A server that verifies clients but sets no session id context (c-icap)
    // answers a resumption with internal_error: full handshakes for mTLS.
    if (resume && resume->get() && !ctx.client_cert()) (void)SSL_set_session(ssl.get(), resume->get());
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
