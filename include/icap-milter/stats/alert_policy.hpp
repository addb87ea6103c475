// NAME
//   alert_policy.hpp - which alert mails go out, and when (no I/O)
// SUMMARY
//   AlertLimiter: at most one mail per kind per interval (AlertRateLimit;
//   LoadAlertInterval for load; start and stop are never held). Events
//   over the limit are counted and held, and go out as one digest ("N
//   more since TIME") when the interval has passed. AlertInfection digest
//   holds every infection for one interval; none drops them.
//   LoadWatch: InScannerQueue above LoadThreshold for LoadAlertInterval
//   makes one load alert, and at most one per LoadAlertInterval after it.
//   PoolWatch: compares each snapshot of the scanner pool with the one
//   before: down, back up, self-test failing, ISTag changed, ISTag not
//   changed for DefinitionsMaxAge, certificate warning.
//   Time is passed in (steady time for decisions, Unix time for the text),
//   so tests drive every rule with a made-up clock.
// DIAGNOSTICS
//   None: these classes only decide. Held events are bounded (the first
//   kMaxListed are listed in a digest, the rest only counted).
#pragma once

#include "icap-milter/scan/pool.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace icapm {

using AlertTime = std::chrono::steady_clock::time_point;

// AlertKind - one kind per rate limit.
enum class AlertKind {
    Infection,
    Load,
    ScannerDown,
    ScannerUp,
    SelfTest,
    DefinitionsUpdated,
    DefinitionsStale,
    Certificate,
    Start,
    Stop
};
constexpr std::size_t kAlertKinds = 10;

// to_string - "infection", "load", "scanner-down", ... (X-Icap-Milter-Alert, logs).
const char* to_string(AlertKind k) noexcept;

// AlertEvent - something worth a mail.
struct AlertEvent {
    AlertKind kind = AlertKind::Start;
    std::int64_t unix_time = 0; // when it happened
    std::string subject;        // after "[icap-milter] HOST: "
    std::string line;           // one line for a digest list
    std::string body;           // details for a mail of its own
};

// AlertMail - a mail to send (headers come from the sender's side).
struct AlertMail {
    AlertKind kind = AlertKind::Start;
    std::string subject;
    std::string body;
};

// AlertSettings - the config keys the policy reads.
struct AlertSettings {
    std::chrono::milliseconds rate_limit{600000};   // AlertRateLimit
    std::chrono::milliseconds load_interval{300000}; // LoadAlertInterval
    std::string infection = "each";                 // AlertInfection: none | each | digest
};

// AlertLimiter - the per-kind rate limit and digests.
class AlertLimiter {
public:
    static constexpr std::size_t kMaxListed = 20;
    // offer - an event at now: a mail to send now, or nothing (held or dropped).
    std::optional<AlertMail> offer(const AlertEvent& e, const AlertSettings& s, AlertTime now);
    // due - digests of held events whose interval has passed by now.
    std::vector<AlertMail> due(const AlertSettings& s, AlertTime now);
    // flush - digests of everything held, whatever the time (at stop).
    std::vector<AlertMail> flush();
    // held - events of kind k waiting for a digest.
    std::size_t held(AlertKind k) const noexcept { return kinds_[static_cast<std::size_t>(k)].held; }

private:
    struct PerKind {
        std::optional<AlertTime> last_sent;
        std::size_t held = 0;
        AlertTime held_since{};
        std::int64_t held_since_unix = 0;
        std::vector<std::string> lines; // the first kMaxListed held events
    };
    // interval - the kind's limit (0 = none).
    static std::chrono::milliseconds interval(AlertKind k, const AlertSettings& s);
    // digest - the held events of kind k as one mail; clears them.
    AlertMail digest(AlertKind k, AlertTime now);
    std::array<PerKind, kAlertKinds> kinds_{};
};

// LoadWatch - InScannerQueue against LoadThreshold.
class LoadWatch {
public:
    // observe - one sample of the queue; an alert when it has been above
    // threshold for interval and none was made within interval.
    std::optional<AlertEvent> observe(std::size_t queued, unsigned threshold, std::chrono::milliseconds interval,
                                      AlertTime now, std::int64_t unix_now);

private:
    std::optional<AlertTime> above_since_;
    std::optional<AlertTime> last_alert_;
    std::size_t peak_ = 0;
};

// PoolWatch - scanner state changes between snapshots.
class PoolWatch {
public:
    // observe - events for what changed since the last snapshot.
    // max_age: DefinitionsMaxAge (0 = no stale alerts).
    std::vector<AlertEvent> observe(const std::vector<ServerStatus>& servers, std::chrono::milliseconds max_age,
                                    AlertTime now, std::int64_t unix_now);
    // rebase - a new pool (reload) starts every server afresh: take its next
    // up/down state as a baseline, not as a change. ISTags are kept.
    void rebase();

private:
    struct Seen {
        bool down_known = false;
        bool down = false;
        std::string istag;
        AlertTime istag_since{};
        std::int64_t istag_since_unix = 0;
        std::optional<AlertTime> stale_alerted;
        std::string self_test_failure;
        std::string tls_warning;
    };
    std::map<std::string, Seen> seen_;
};

// self_test_failure - what a server's self-test failed, "" when it did not.
std::string self_test_failure(const ServerStatus& s);

// AlertHeaders - what the header block of an alert mail needs.
struct AlertHeaders {
    std::string host;            // ReportHostname or the system's name
    std::string from;            // AlertSender (or its default)
    std::vector<std::string> to; // AlertRecipients
    std::int64_t unix_time = 0;  // Date
    std::string message_id;      // without angle brackets
};

// compose_alert_message - the whole mail: Date, From, To, Subject
// ("[icap-milter] HOST: ..."), Message-ID, Auto-Submitted,
// X-Icap-Milter-Alert, MIME headers, then the plain-text body. Header
// values and body lines are reduced to printable ASCII and bounded.
std::string compose_alert_message(const AlertMail& mail, const AlertHeaders& h);

// alert_time_text - "2026-11-28 01:02:03 UTC".
std::string alert_time_text(std::int64_t unix_time);

} // namespace icapm
