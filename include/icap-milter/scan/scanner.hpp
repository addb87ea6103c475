// NAME
//   scanner.hpp - the worker pool that scans items through ICAP servers
// SUMMARY
//   ScanThreads workers scan on persistent sessions lent by the
//   ServerPool (balancing, failover, circuit breaker, health). Connection
//   threads never talk to scanners: they
//   hand their items to scan(), which queues them on a bounded job queue
//   and waits, calling a progress callback so the MTA does not time out.
// DIAGNOSTICS
//   scan() never throws for scanner trouble: an item that cannot be
//   queued or finished in time gets a Verdict of kind Error.
#pragma once

#include "icap-milter/config/config.hpp"
#include "icap-milter/icap/verdict.hpp"
#include "icap-milter/mime/spool.hpp"
#include "icap-milter/scan/server_spec.hpp"
#include "icap-milter/scan/pool.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace icapm {

// ScanTask - one item to scan; owns (shares) its bytes.
struct ScanTask {
    std::string filename;
    std::string job_id;                // "Job-7.2"
    std::shared_ptr<const Spool> data;
    ContentClass kind = ContentClass::Other; // archive / document / other, for scanner trust
    // Counted down when this task has its verdict (the in-flight registry, icap-milterctl queue); may be null.
    std::shared_ptr<std::atomic<std::size_t>> pending = nullptr;
};

class TlsContext;
class TlsFiles;

// make_scanner_tls - the TLS context for the configured icaps:// servers
// (nullptr when every server is plain icap://). Throws std::runtime_error
// on a bad IcapServer line, an unreadable CA file, a client certificate
// or key that cannot be loaded or do not match, or a bad cipher list.
// files: the TLS files as read before the privilege drop (may be null).
std::shared_ptr<const TlsContext> make_scanner_tls(const Config& config, const TlsFiles* files = nullptr);
// make_scanner_tls - the same for IcapServer lines already parsed.
std::shared_ptr<const TlsContext> make_scanner_tls(const Config& config, const std::vector<ServerSpec>& specs,
                                                   const TlsFiles* files = nullptr);

class Scanner {
public:
    // Scanner - validate servers, build the TLS context, start the workers.
    // Throws std::runtime_error on a bad server URI or TLS setting.
    // tls_files: TlsCAFile/TlsCertFile/TlsKeyFile as read before the
    // privilege drop (null: read the paths now).
    explicit Scanner(std::shared_ptr<const Config> config, std::shared_ptr<const TlsFiles> tls_files = nullptr);
    // ~Scanner - finish queued work, then stop and join the workers.
    ~Scanner();
    Scanner(const Scanner&) = delete;
    Scanner& operator=(const Scanner&) = delete;

    // scan - verdicts in task order; progress() is called about every
    // progress_interval while waiting.
    std::vector<Verdict> scan(std::vector<ScanTask> tasks, const std::function<void()>& progress,
                              std::chrono::milliseconds progress_interval = std::chrono::seconds(10));

    // queued - items waiting in the queue now (InScannerQueue).
    std::size_t queued() const;

    // signatures - the current virus-definition signature (ISTag) of every
    // server that is up, fetching OPTIONS from servers not yet asked.
    // Empty when no server answers. Used to check a scan token's scanVersion
    // and for X-Virus-Scanned.
    std::vector<std::string> signatures();
    // cached_signatures - the same from what the health thread last saw,
    // without any I/O: for connection threads (the scan token check).
    // Servers that are down or failed their self-test do not count.
    std::vector<std::string> cached_signatures() const;

    // health - the pool's overall health (Pending validation .. Error).
    Health health() const;
    // servers - a snapshot of every configured server.
    std::vector<ServerStatus> servers() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace icapm
