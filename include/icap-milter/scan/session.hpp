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
#include "icap-milter/net/uri.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace icapm {

class TlsContext;

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
};

// IcapSession - not thread-safe: each worker owns its sessions.
class IcapSession {
public:
    // IcapSession - no I/O happens until the first options() or scan().
    IcapSession(IcapUri uri, std::shared_ptr<const TlsContext> tls, Timeouts timeouts,
                std::string user_agent = "icap-milter");
    ~IcapSession();
    IcapSession(const IcapSession&) = delete;
    IcapSession& operator=(const IcapSession&) = delete;

    // options - the OPTIONS reply, fetched when absent or older than its TTL.
    // nullopt (and *error set) when the server is unreachable or refuses.
    std::optional<ServerOptions> options(std::string* error);
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

private:
    struct Impl;
    IcapUri uri_;
    std::unique_ptr<Impl> impl_;
};

} // namespace icapm
