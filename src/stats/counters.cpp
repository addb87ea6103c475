// NAME
//   counters.cpp - the statistics counters and their text form
#include "icap-milter/stats/counters.hpp"

#include "icap-milter/policy/bypass.hpp"

#include <ctime>

namespace icapm {

// token_rejected_because - bump the total and the per-reason count.
void Counters::token_rejected_because(const std::string& reason) {
    ++token_rejected;
    std::lock_guard lock(mutex_);
    if (rejected_reasons_.size() < 64 || rejected_reasons_.count(reason)) ++rejected_reasons_[reason];
}

// set_scanner_health - store the pool's latest view.
void Counters::set_scanner_health(const ScannerHealth& h) {
    std::lock_guard lock(mutex_);
    health_ = h;
}

// scanner_health - copy under the lock.
ScannerHealth Counters::scanner_health() const {
    std::lock_guard lock(mutex_);
    return health_;
}

namespace {
// utc_text - "2026-11-22T06:38:34Z", or "never" for 0.
std::string utc_text(std::int64_t t) {
    if (t == 0) return "never";
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}
} // namespace

// count_action - one more message that got action a.
void Counters::count_action(Action a) noexcept {
    auto i = static_cast<std::size_t>(a);
    if (i < actions.size()) ++actions[i];
}

// render - stable order, so tools and tests can parse it.
std::string Counters::render() const {
    std::string out;
    auto line = [&](const char* name, std::uint64_t v) { out += std::string(name) + ": " + std::to_string(v) + "\n"; };
    line("Examined", examined);
    line("SentToScanner", sent_to_scanner);
    line("Scanned", scanned);
    line("Infected", infected);
    line("VirusFree", virus_free);
    line("Unscanned", unscanned);
    line("AmbiguousMime", ambiguous_mime);
    line("Token.Self", token_self);
    line("Token.TrustedServer", token_trusted);
    line("Token.Rejected", token_rejected);
    line("ScanRetries", scan_retries);
    line("QueueFull", queue_full);
    line("MessageScanTimeouts", scan_deadline);
    line("SelfTests", self_tests);
    line("PartsNotTrusted", not_trusted);
    line("Quarantine.Stored", quarantine_stored);
    line("Quarantine.Bytes", quarantine_bytes);
    line("Quarantine.Released", quarantine_released);
    line("Quarantine.Expired", quarantine_expired);
    line("Quarantine.Errors", quarantine_errors);
    line("Alerts.Sent", alerts_sent);
    line("Alerts.Failed", alerts_failed);
    line("Alerts.Dropped", alerts_dropped);
    line("Blocked", blocked);
    line("Skipped", skipped);
    for (BypassRule r : {BypassRule::ClientNetworks, BypassRule::Authenticated, BypassRule::Senders,
                         BypassRule::Recipients})
        line(("Skipped." + std::string(to_string(r))).c_str(), skipped_by[static_cast<std::size_t>(r)]);
    for (Action a : {Action::Accept, Action::Reject, Action::Discard, Action::Tempfail, Action::Hold, Action::Redirect,
                     Action::Notify, Action::Clean})
        line(("Action." + std::string(to_string(a))).c_str(), actions[static_cast<std::size_t>(a)]);
    std::lock_guard lock(mutex_);
    for (const auto& [reason, n] : rejected_reasons_) out += "Token.Rejected." + reason + ": " + std::to_string(n) + "\n";
    out += "Health: " + health_.status + "\n";
    out += "LastHealthCheck: " + utc_text(health_.last_health_check) + "\n";
    out += "LastVirusDefinitionSignature: " + (health_.last_signature.empty() ? "unknown" : health_.last_signature);
    if (!health_.last_signature_info.empty()) out += " (" + health_.last_signature_info + ")";
    out += "\n";
    out += "LastVirusSignatureUpdate: " + utc_text(health_.last_signature_update) + "\n";
    out += "ScannerSelfTest: " + health_.self_test + "\n";
    return out;
}

// rejected_reasons - copy under the lock (the metrics read it at scrape time).
std::map<std::string, std::uint64_t> Counters::rejected_reasons() const {
    std::lock_guard lock(mutex_);
    return rejected_reasons_;
}

// counters - one instance for the process.
Counters& counters() {
    static Counters c;
    return c;
}

} // namespace icapm
