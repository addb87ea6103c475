// NAME
//   counters.cpp - the statistics counters and their text form
#include "icap-milter/stats/counters.hpp"

#include "icap-milter/common/date_text.hpp"

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


// count_action - one more message that got action a.
void Counters::count_action(Action a) noexcept {
    auto i = static_cast<std::size_t>(a);
    if (i < actions.size()) ++actions[i];
}

namespace {
// kCounters - see counter_table().
constexpr CounterInfo kCounters[] = {
    {"Examined", "icap_milter_examined_total", "Messages examined at end of message (Examined).", &Counters::examined},
    {"SentToScanner", "icap_milter_sent_to_scanner_total", "Parts handed to the scan workers (SentToScanner).",
     &Counters::sent_to_scanner},
    {"Scanned", "icap_milter_scanned_total", "Parts that got a verdict (Scanned).", &Counters::scanned},
    {"Infected", "icap_milter_infected_total", "Messages with an infected part (Infected).", &Counters::infected},
    {"VirusFree", "icap_milter_virus_free_total", "Messages found clean (VirusFree).", &Counters::virus_free},
    {"Unscanned", "icap_milter_unscanned_total", "Messages with unscannable or failed parts (Unscanned).",
     &Counters::unscanned},
    {"AmbiguousMime", "icap_milter_ambiguous_mime_total", "Messages whose MIME failed closed (AmbiguousMime).",
     &Counters::ambiguous_mime},
    {"Token.Self", "icap_milter_tokens_signed_total", "Scan tokens signed here (Token.Self).", &Counters::token_self},
    {"Token.TrustedServer", "icap_milter_tokens_trusted_total",
     "Scan tokens verified, scan skipped (Token.TrustedServer).", &Counters::token_trusted},
    {"Token.Rejected", "", "Tokens present but failing verification (per reason: tokens_rejected_total).",
     &Counters::token_rejected},
    {"ScanRetries", "icap_milter_scan_retries_total", "Part exchanges tried again after a failure (ScanRetries).",
     &Counters::scan_retries},
    {"QueueFull", "icap_milter_queue_full_total", "Messages that found the scan queue full (QueueFull).",
     &Counters::queue_full},
    {"MessageScanTimeouts", "icap_milter_message_scan_timeouts_total",
     "Messages cut off by MessageScanTimeout (MessageScanTimeouts).", &Counters::scan_deadline},
    {"SelfTests", "icap_milter_self_tests_total", "Scanner self-tests completed (SelfTests).", &Counters::self_tests},
    {"PartsNotTrusted", "icap_milter_parts_not_trusted_total", "Parts no scanner was trusted with (PartsNotTrusted).",
     &Counters::not_trusted},
    {"Quarantine.Stored", "icap_milter_quarantine_stored_total",
     "Copies written to QuarantineDirectory (Quarantine.Stored).", &Counters::quarantine_stored},
    {"Quarantine.Bytes", "icap_milter_quarantine_stored_bytes_total", "Bytes of those copies (Quarantine.Bytes).",
     &Counters::quarantine_bytes},
    {"Quarantine.Released", "icap_milter_quarantine_released_total",
     "Quarantined copies released (Quarantine.Released).", &Counters::quarantine_released},
    {"Quarantine.Expired", "icap_milter_quarantine_expired_total",
     "Quarantined copies removed by retention or size (Quarantine.Expired).", &Counters::quarantine_expired},
    {"Quarantine.Errors", "icap_milter_quarantine_errors_total",
     "Quarantine copies that could not be written (Quarantine.Errors).", &Counters::quarantine_errors},
    {"Alerts.Sent", "icap_milter_alerts_sent_total", "Alert mails an AlertSmtpServer took (Alerts.Sent).",
     &Counters::alerts_sent},
    {"Alerts.Failed", "icap_milter_alerts_failed_total", "Alert mails no AlertSmtpServer took (Alerts.Failed).",
     &Counters::alerts_failed},
    {"Alerts.Dropped", "icap_milter_alerts_dropped_total",
     "Alert events dropped because the alert queue was full (Alerts.Dropped).", &Counters::alerts_dropped},
    {"Blocked", "icap_milter_blocked_total", "Messages with a banned attachment (Blocked).", &Counters::blocked},
    {"Skipped", "icap_milter_skipped_total",
     "Messages a bypass rule let through unscanned (Skipped; per rule: skipped_by_rule_total).", &Counters::skipped},
};
} // namespace

// counter_table - the one list of plain counters.
std::span<const CounterInfo> counter_table() noexcept { return kCounters; }

// render - stable order, so tools and tests can parse it.
std::string Counters::render() const {
    std::string out;
    auto line = [&](const char* name, std::uint64_t v) { out += std::string(name) + ": " + std::to_string(v) + "\n"; };
    for (const CounterInfo& c : kCounters) line(c.name, (this->*c.field).load());
    for (BypassRule r : {BypassRule::ClientNetworks, BypassRule::Authenticated, BypassRule::Senders,
                         BypassRule::Recipients})
        line(("Skipped." + std::string(to_string(r))).c_str(), skipped_by[static_cast<std::size_t>(r)]);
    for (Action a : {Action::Accept, Action::Reject, Action::Discard, Action::Tempfail, Action::Hold, Action::Redirect,
                     Action::Notify, Action::Clean})
        line(("Action." + std::string(to_string(a))).c_str(), actions[static_cast<std::size_t>(a)]);
    std::lock_guard lock(mutex_);
    for (const auto& [reason, n] : rejected_reasons_) out += "Token.Rejected." + reason + ": " + std::to_string(n) + "\n";
    out += "Health: " + health_.status + "\n";
    out += "LastHealthCheck: " + iso_time_text(health_.last_health_check) + "\n";
    out += "LastVirusDefinitionSignature: " + (health_.last_signature.empty() ? "unknown" : health_.last_signature);
    if (!health_.last_signature_info.empty()) out += " (" + health_.last_signature_info + ")";
    out += "\n";
    out += "LastVirusSignatureUpdate: " + iso_time_text(health_.last_signature_update) + "\n";
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
