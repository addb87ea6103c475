// NAME
//   session.hpp - one persistent ICAP connection to one scanner
// SUMMARY
//   Owns a socket (plain or TLS), sends OPTIONS (cached for Options-TTL)
//   and RESPMOD with Preview, reading while writing. A stale pooled
//   connection is retried once on a fresh one.
//   While uploading it also watches for an early final reply; after one
//   it stops sending and does not reuse the connection.
// DIAGNOSTICS
//   scan() never throws: every failure becomes a Verdict of kind Error
//   (or Unscannable when the server answered but not with a usable
//   verdict), with a reason for the log.
#pragma once

#include "icap-milter/common/byte_source.hpp"
#include "icap-milter/icap/server_options.hpp"
#include "icap-milter/icap/verdict.hpp"
#include "icap-milter/net/socket.hpp"
#include "icap-milter/net/tls.hpp"
#include "icap-milter/net/uri.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace icapm {

// ServerShared - what every session to one server shares: the OPTIONS
// cache (so a new connection does not ask again) and the last resumable
// TLS session (so any new connection resumes). Thread-safe.
class ServerShared {
public:
    // fresh_options - the cached OPTIONS while before their refresh time.
    std::optional<ServerOptions> fresh_options(Deadline now) const;
    // store_options - cache o until refresh_at.
    void store_options(const ServerOptions& o, Deadline refresh_at);
    // invalidate_options - forget the cache (server went down).
    void invalidate_options();
    // refresh_at - when the cache should be refetched; min() when empty.
    Deadline refresh_at() const;
    // load_tls - copy the shared TLS session into a session's slot.
    void load_tls(TlsResumption& into) const;
    // keep_tls - remember a session's TLS session for everyone.
    void keep_tls(const TlsResumption& from);

private:
    mutable std::mutex mutex_;
    std::optional<ServerOptions> options_;
    Deadline refresh_at_ = Deadline::min();
    TlsResumption tls_;
};

// Timeouts - deadlines for one ICAP exchange.
struct Timeouts {
    std::chrono::milliseconds connect{10000};
    std::chrono::milliseconds io{60000};   // each read or write wait; also the
                                           // whole header part of a reply
    std::chrono::milliseconds total{0};    // one options()/scan() call, retry
                                           // included; 0 = no overall bound
};

// ScanRequest - per-item facts the server should see.
struct ScanRequest {
    std::string filename;  // shown in the synthetic GET URL (url-encoded by the session)
    std::string job_id;    // "Job-12.3", for logs
    Deadline deadline = Deadline::max(); // the message's scan deadline (MessageScanTimeout)
    const std::atomic<bool>* cancel = nullptr; // set: give up at once (the pool is stopping)
};

// IcapSession - not thread-safe: each worker owns its sessions.
class IcapSession {
public:
    // IcapSession - no I/O happens until the first options() or scan().
    IcapSession(IcapUri uri, std::shared_ptr<const TlsContext> tls, Timeouts timeouts,
                std::string user_agent = "icap-milter", std::shared_ptr<ServerShared> shared = nullptr);
    ~IcapSession();
    IcapSession(const IcapSession&) = delete;
    IcapSession& operator=(const IcapSession&) = delete;

    // options - the OPTIONS reply, fetched when absent or older than its TTL.
    // nullopt (and *error set) when the server is unreachable or refuses.
    std::optional<ServerOptions> options(std::string* error);
    // refresh_options - fetch OPTIONS now, ignoring every cache (probes).
    std::optional<ServerOptions> refresh_options(std::string* error);
    // scan - RESPMOD the bytes of data; never throws.
    Verdict scan(const ScanRequest& request, ByteSource& data);
    // close - drop the connection (next call reconnects).
    void close() noexcept;
    // set_preview - use Preview when the server offers it (default on).
    // Off for servers that answer every preview with 204 (FortiSandbox).
    void set_preview(bool enabled) noexcept;
    // invalidate_options - forget cached OPTIONS; the next call refetches.
    void invalidate_options() noexcept;
    const IcapUri& uri() const noexcept { return uri_; }
    // connect_failed - the last call failed before any connection was
    // made (refused, unreachable, TLS handshake): nothing reached the server.
    bool connect_failed() const noexcept;
    // tls_info - the peer certificate and protocol of the last TLS
    // connection made; nullopt for plain ICAP or before the first one.
    std::optional<TlsPeerInfo> tls_info() const;

private:
    struct Impl;
    IcapUri uri_;
    std::unique_ptr<Impl> impl_;
};

} // namespace icapm
