// NAME
//   pool.hpp - the scanner pool: servers, balancing, circuit breaker, health
// SUMMARY
//   ServerPool owns one entry per configured server: its sessions (idle
//   ones kept for reuse), its cap, its circuit-breaker state, its health
//   and its definition signature. acquire() lends a session of the best
//   server: not down, not already tried for this item, in the lowest
//   priority group that has such a server, with the fewest outstanding
//   requests per unit of weight, and under its connection cap (the
//   smaller of the configured cap and the server's Max-Connections).
//   Results come back through report_success()/report_failure(); after
//   CircuitBreakerFailures consecutive failures a server is down until an
//   OPTIONS probe (every CircuitBreakerProbeInterval) succeeds.
//   Self-test (self_test.hpp): with ScannerSelfTest on, one thread per
//   server sends it the canaries (all of them at start, the small ones
//   again when its ISTag changes); until its first result a server gets
//   no mail (acquire() waits for the result, up to the message deadline),
//   and afterwards only parts it is trusted with. A part no server is
//   trusted with gets NoServer::NotTrusted and a reason naming the size
//   or class; a server that missed plain EICAR is Error and gets nothing.
// DIAGNOSTICS
//   State changes (down, up) and expiring or expired certificates are
//   logged at warning level; a new definition signature at info level as
//   "virus definitions updated: old -> new". acquire() never blocks when
//   no server is up: it returns nullopt at once, so mail gets OnFail now.
//   Self-test: "scanner X did not detect the EICAR test file: it gets no
//   mail until it does (self-test)" is an error; misses (zip, PDF, large
//   objects) are a warning naming the c-icap fix; a test that could not
//   be done is a warning, counts as a failure for the circuit breaker,
//   and is retried after 0.5 s, doubling up to CircuitBreakerProbeInterval.
#pragma once

#include "icap-milter/scan/content_class.hpp"
#include "icap-milter/scan/self_test.hpp"
#include "icap-milter/scan/server_spec.hpp"
#include "icap-milter/scan/session.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace icapm {

// Health - as the seed names it, per server and overall.
enum class Health { Pending, Validated, Warnings, Error };

// to_string - "Pending validation", "Service validated", "Warnings", "Error".
const char* to_string(Health h) noexcept;

// NoServer - why acquire() lent nothing.
enum class NoServer {
    NoneUp,       // every server is down, or none passed its self-test: OnFail
    NoOtherToTry, // every live server was tried already for this item
    AllAtCap,     // the eligible servers stayed at their caps (or in their
                  // first self-test) until the deadline
    NotTrusted    // servers are up, but none proved it scans a part like this one
};

// PoolSettings - the pool's knobs from the config.
struct PoolSettings {
    unsigned default_cap = 4;                  // cap when the server line gives none (ScanThreads)
    unsigned failures_to_down = 3;             // CircuitBreakerFailures
    std::chrono::milliseconds probe_interval{10000};  // CircuitBreakerProbeInterval
    std::chrono::milliseconds health_interval{60000}; // HealthCheckInterval
    unsigned expiry_warning_days = 30;         // TlsExpiryWarningDays (0 = off)
    SelfTestSettings self_test;                // ScannerSelfTest, MaxScanSize (off unless set)
};

// ServerStatus - a snapshot of one server for logs, tools and tests.
struct ServerStatus {
    std::string name;          // canonical URI
    Health health = Health::Pending;
    bool down = false;
    unsigned outstanding = 0;  // requests in flight now
    unsigned open = 0;         // sessions that exist (idle + lent)
    unsigned cap = 0;          // current connection cap
    unsigned failures = 0;     // consecutive failures
    std::uint64_t requests = 0; // scans handed to this server
    std::string istag;         // definition signature, "" = unknown
    std::string version_info;  // readable version, if the server gave one
    std::string last_error;
    std::string tls_warning;   // expiring / expired certificate note
    // Self-test (ScannerSelfTest):
    std::string self_test;     // "off", "pending", "passed (...)", "misses ...", "missed the EICAR ..."
    bool gets_mail = true;     // false while untested, or after missing plain EICAR
    std::uint64_t trusted_size = 0; // largest part it is trusted with (0 = none yet)
    std::vector<std::string> misses; // canaries missed, in words
    std::string fix;           // the c-icap settings that cure the misses
    std::vector<CanaryResult> canaries; // the last test's canaries
    // For icap-milterctl health:
    std::int64_t last_check = 0;       // Unix time of the last OPTIONS probe, 0 = never
    std::int64_t last_definition_update = 0; // Unix time its current ISTag was first seen (start or change), 0 = never
    std::int64_t last_latency_ms = -1; // the last successful scan exchange, -1 = none yet
    double avg_latency_ms = -1;        // moving average of those (weight 1/8 for the newest), -1 = none
};

class ServerPool {
public:
    // ServerPool - every server starts Pending; no I/O here, but with
    // settings.self_test.enabled the self-test threads start at once.
    ServerPool(std::vector<ServerSpec> specs, std::shared_ptr<const TlsContext> tls, Timeouts timeouts,
               PoolSettings settings);
    ~ServerPool();
    ServerPool(const ServerPool&) = delete;
    ServerPool& operator=(const ServerPool&) = delete;

    // Lease - a lent session; gives it back (or drops it) when destroyed.
    class Lease {
    public:
        Lease(ServerPool* pool, std::size_t server, std::unique_ptr<IcapSession> session) noexcept;
        Lease(Lease&& other) noexcept;
        Lease& operator=(Lease&&) = delete;
        Lease(const Lease&) = delete;
        ~Lease();
        IcapSession& session() noexcept { return *session_; }
        std::size_t server() const noexcept { return server_; }

    private:
        ServerPool* pool_; // not owned: the pool outlives every lease
        std::size_t server_;
        std::unique_ptr<IcapSession> session_;
    };

    // acquire - a session of the best eligible server, skipping those with
    // tried[i] set. Waits until `until` only while eligible servers are
    // all at their cap; nullopt at once (and *why) when none is up.
    std::optional<Lease> acquire(const std::vector<bool>& tried, Deadline until, std::string* why);
    // acquire - the same, only among servers trusted with part (self-test);
    // *kind says why nothing was lent.
    std::optional<Lease> acquire(const std::vector<bool>& tried, const PartInfo& part, Deadline until,
                                 NoServer* kind, std::string* why);
    // report_success - a verdict came back: failures reset, server up.
    // latency: how long the exchange took (negative: not measured).
    void report_success(std::size_t server, const std::string& istag,
                        std::chrono::milliseconds latency = std::chrono::milliseconds(-1));
    // report_failure - an exchange failed; may trip the breaker.
    void report_failure(std::size_t server, const std::string& reason);
    // any_up - whether some server is not down (Pending counts as up).
    bool any_up() const;
    // maintain - probe down servers that are due, refresh OPTIONS that
    // are about to expire, and run the idle health check when due.
    // Returns true when a health round ran. Called by one thread only.
    bool maintain(Deadline now);
    // probe - OPTIONS on one server now; updates its state. true if it answered.
    bool probe(std::size_t server);
    // signatures - ISTags of servers that are up, asking OPTIONS first of
    // those that have none yet.
    std::vector<std::string> signatures();
    // status - every server's snapshot, in configuration order.
    std::vector<ServerStatus> status() const;
    // overall - the pool's health from its servers'.
    Health overall() const;
    std::size_t size() const noexcept { return servers_.size(); }
    // self_test_result - a server's last complete self-test, if any.
    std::optional<SelfTestResult> self_test_result(std::size_t server) const;
    // record_self_test - take a self-test result (the self-test threads;
    // tests inject results with it). full: the large canary was part of it.
    void record_self_test(std::size_t server, SelfTestResult result, bool full);

private:
    struct Server;
    // give_back - a lease ends.
    void give_back(std::size_t server, std::unique_ptr<IcapSession> session);
    // note_signature - record an ISTag (and version); log a change.
    void note_signature(std::size_t server, const std::string& istag, const std::string& version);
    // publish - push the overall health and signature to the counters.
    void publish();
    // health_of - one server's health (mutex_ held).
    Health health_of(const Server& s) const;
    // Fit - how a server stands for one part (mutex_ held).
    enum class Fit { Lend, Pending, Failed, NotTrusted };
    // fit - whether s may scan part, by its self-test.
    Fit fit(const Server& s, const PartInfo& part) const;
    // not_lent - why no server may scan part: *kind and *why (mutex_ held).
    void not_lent(const PartInfo& part, NoServer* kind, std::string* why) const;
    // test_loop - one server's self-test thread.
    void test_loop(std::size_t server);

    std::shared_ptr<const TlsContext> tls_;
    Timeouts timeouts_;
    PoolSettings settings_;
    mutable std::mutex mutex_;
    std::condition_variable slot_free_;
    std::vector<std::unique_ptr<Server>> servers_;
    std::size_t rotate_ = 0;        // tie breaker, under mutex_
    std::int64_t last_health_check_ = 0;
    std::string last_signature_, last_signature_info_;
    std::int64_t last_signature_update_ = 0;
    Deadline next_health_round_ = Deadline::min(); // maintain() thread only
    std::mutex publish_mutex_;            // serialises publish()
    std::atomic<bool> stopping_{false};   // tells the self-test threads to end
    std::condition_variable test_due_;    // wakes the self-test threads (with mutex_)
    std::vector<std::thread> testers_;    // one per server when the self-test is on
};

} // namespace icapm
