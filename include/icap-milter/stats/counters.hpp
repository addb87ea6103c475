// NAME
//   counters.hpp - process-wide statistics, named as in the seed's model
// SUMMARY
//   Lock-free counters (Examined, SentToScanner, Scanned, Infected,
//   VirusFree, Token.*) plus reason counts for rejected tokens under a
//   lock, and the scanner pool's health: status, LastHealthCheck,
//   LastVirusDefinitionSignature, LastVirusSignatureUpdate (under a lock).
//   render() gives "Name: value" lines for logs and tools.
#pragma once

#include "icap-milter/config/config.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <string>

namespace icapm {

// ScannerHealth - the pool's view, as the seed's statistics name it.
struct ScannerHealth {
    std::string status = "Pending validation"; // Pending validation | Service validated | Warnings | Error
    std::int64_t last_health_check = 0;         // Unix time of the last health round, 0 = never
    std::string last_signature;                 // newest definition signature (ISTag) seen
    std::string last_signature_info;            // its readable version, if the server gave one
    std::int64_t last_signature_update = 0;     // Unix time a signature last changed, 0 = never
    std::string self_test = "off";              // per server: "URI: summary", joined by " | "
};

class Counters {
public:
    std::atomic<std::uint64_t> examined{0};        // messages seen at end of message
    std::atomic<std::uint64_t> sent_to_scanner{0}; // parts handed to the worker pool
    std::atomic<std::uint64_t> scanned{0};         // parts with a verdict from a scanner
    std::atomic<std::uint64_t> infected{0};        // messages with an infected part
    std::atomic<std::uint64_t> virus_free{0};      // messages found clean
    std::atomic<std::uint64_t> unscanned{0};       // messages with unscannable or failed parts
    std::atomic<std::uint64_t> ambiguous_mime{0};  // messages whose MIME failed closed
    std::atomic<std::uint64_t> token_self{0};      // tokens signed here
    std::atomic<std::uint64_t> token_trusted{0};   // tokens verified: scan skipped
    std::atomic<std::uint64_t> token_rejected{0};  // tokens present but failing verification
    std::atomic<std::uint64_t> scan_retries{0};    // part exchanges tried again after a failure
    std::atomic<std::uint64_t> queue_full{0};      // messages that found the scan queue full
    std::atomic<std::uint64_t> scan_deadline{0};   // messages cut off by MessageScanTimeout
    std::atomic<std::uint64_t> self_tests{0};      // scanner self-tests completed
    std::atomic<std::uint64_t> not_trusted{0};     // parts no scanner was trusted with (self-test)
    std::atomic<std::uint64_t> quarantine_stored{0};   // copies written to QuarantineDirectory
    std::atomic<std::uint64_t> quarantine_bytes{0};    // bytes of those copies
    std::atomic<std::uint64_t> quarantine_released{0}; // re-injected copies let through (claimed)
    std::atomic<std::uint64_t> quarantine_expired{0};  // copies removed by retention or size
    std::atomic<std::uint64_t> quarantine_errors{0};   // copies that could not be written (tempfail)
    // Alerts by mail (stats/alerts.hpp)
    std::atomic<std::uint64_t> alerts_sent{0};    // alert mails a server took
    std::atomic<std::uint64_t> alerts_failed{0};  // alert mails no AlertSmtpServer took
    std::atomic<std::uint64_t> alerts_dropped{0}; // alert events dropped: the alert queue was full
    // Messages per final action (Action.accept, Action.reject, ...), indexed by Action.
    std::array<std::atomic<std::uint64_t>, 8> actions{};
    // Filters and bypass lists (issue 12): Blocked messages (a banned
    // name or type), Skipped messages, and Skipped per rule, indexed by
    // BypassRule (Skipped.SkipClientNetworks, ...).
    std::atomic<std::uint64_t> blocked{0};
    std::atomic<std::uint64_t> skipped{0};
    std::array<std::atomic<std::uint64_t>, 4> skipped_by{};

    // count_action - one more message that got action a.
    void count_action(Action a) noexcept;

    // token_rejected_because - count one rejected token and its reason.
    void token_rejected_because(const std::string& reason);
    // set_scanner_health - replace the pool's health view.
    void set_scanner_health(const ScannerHealth& h);
    // scanner_health - a copy of the pool's health view.
    ScannerHealth scanner_health() const;
    // render - "Name: value" lines, one per counter and per rejection reason.
    std::string render() const;
    // rejected_reasons - a copy of the per-reason counts of rejected tokens.
    std::map<std::string, std::uint64_t> rejected_reasons() const;

private:
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> rejected_reasons_;
    ScannerHealth health_;
};

// CounterInfo - one plain counter: its name in render() and
// icap-milterctl stats (the seed's name), its Prometheus family (empty:
// exported as a labelled family of its own) and what it counts. The one
// list both render() and the metrics read, so neither can miss one.
struct CounterInfo {
    const char* name;
    const char* metric;
    const char* help;
    std::atomic<std::uint64_t> Counters::*field;
};

// counter_table - every plain counter, in render() order.
std::span<const CounterInfo> counter_table() noexcept;

// counters - the process's counters.
Counters& counters();

} // namespace icapm
