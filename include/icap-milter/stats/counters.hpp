// NAME
//   counters.hpp - process-wide statistics, named as in the seed's model
// SUMMARY
//   Lock-free counters (Examined, SentToScanner, Scanned, Infected,
//   VirusFree, Token.*) plus reason counts for rejected tokens under a
//   lock. render() gives "Name: value" lines for logs and tools.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace icapm {

class Counters {
public:
    std::atomic<std::uint64_t> examined{0};        // messages seen at end of message
    std::atomic<std::uint64_t> sent_to_scanner{0}; // parts handed to the worker pool
    std::atomic<std::uint64_t> scanned{0};         // parts with a verdict from a scanner
    std::atomic<std::uint64_t> infected{0};        // messages with an infected part
    std::atomic<std::uint64_t> virus_free{0};      // messages found clean
    std::atomic<std::uint64_t> unscanned{0};       // messages with unscannable or failed parts
    std::atomic<std::uint64_t> token_self{0};      // tokens signed here
    std::atomic<std::uint64_t> token_trusted{0};   // tokens verified: scan skipped
    std::atomic<std::uint64_t> token_rejected{0};  // tokens present but failing verification

    // token_rejected_because - count one rejected token and its reason.
    void token_rejected_because(const std::string& reason);
    // render - "Name: value" lines, one per counter and per rejection reason.
    std::string render() const;

private:
    mutable std::mutex mutex_;
    std::map<std::string, std::uint64_t> rejected_reasons_;
};

// counters - the process's counters.
Counters& counters();

} // namespace icapm
