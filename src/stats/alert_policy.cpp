// NAME
//   alert_policy.cpp - rate limits, digests, load and scanner-pool watches
// SUMMARY
//   See alert_policy.hpp. Nothing here does I/O or reads a clock: the
//   alert thread (alerts.cpp) passes the time in, and so do the tests.
// DIAGNOSTICS
//   None.
#include "icap-milter/stats/alert_policy.hpp"

#include "icap-milter/common/date_text.hpp"
#include "icap-milter/log/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

namespace icapm {

namespace {

// seconds_text - "90s", "5m", "2h" for a duration in a mail.
std::string seconds_text(std::chrono::milliseconds d) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
    if (s >= 3600 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
    if (s >= 60 && s % 60 == 0) return std::to_string(s / 60) + "m";
    return std::to_string(s) + "s";
}

// plural - what a digest counts, by kind.
const char* plural(AlertKind k) noexcept {
    switch (k) {
    case AlertKind::Infection: return "infected messages";
    case AlertKind::Load: return "load alerts";
    case AlertKind::ScannerDown: return "scanner-down events";
    case AlertKind::ScannerUp: return "scanner-up events";
    case AlertKind::SelfTest: return "self-test failures";
    case AlertKind::DefinitionsUpdated: return "definition updates";
    case AlertKind::DefinitionsStale: return "stale-definition warnings";
    case AlertKind::Certificate: return "certificate warnings";
    case AlertKind::Start: return "start events";
    case AlertKind::Stop: return "stop events";
    }
    return "alerts";
}

// digest_mode - AlertInfection digest holds every infection for an interval.
bool digest_mode(AlertKind k, const AlertSettings& s) { return k == AlertKind::Infection && s.infection == "digest"; }

} // namespace

// to_string - the kind's name in logs and the X-Icap-Milter-Alert header.
const char* to_string(AlertKind k) noexcept {
    switch (k) {
    case AlertKind::Infection: return "infection";
    case AlertKind::Load: return "load";
    case AlertKind::ScannerDown: return "scanner-down";
    case AlertKind::ScannerUp: return "scanner-up";
    case AlertKind::SelfTest: return "self-test";
    case AlertKind::DefinitionsUpdated: return "definitions-updated";
    case AlertKind::DefinitionsStale: return "definitions-stale";
    case AlertKind::Certificate: return "certificate";
    case AlertKind::Start: return "start";
    case AlertKind::Stop: return "stop";
    }
    return "?";
}

// alert_time_text - UTC, readable, for mail bodies and digests.
std::string alert_time_text(std::int64_t unix_time) {
    return utc_text(static_cast<std::time_t>(unix_time), "%Y-%m-%d %H:%M:%S UTC");
}

// interval - start and stop are never held; load has its own interval.
std::chrono::milliseconds AlertLimiter::interval(AlertKind k, const AlertSettings& s) {
    if (k == AlertKind::Start || k == AlertKind::Stop) return std::chrono::milliseconds(0);
    if (k == AlertKind::Load) return s.load_interval;
    return s.rate_limit;
}

// offer - send now when the kind's interval allows and nothing is held; else hold.
std::optional<AlertMail> AlertLimiter::offer(const AlertEvent& e, const AlertSettings& s, AlertTime now) {
    if (e.kind == AlertKind::Infection && s.infection == "none") return std::nullopt;
    PerKind& p = kinds_[static_cast<std::size_t>(e.kind)];
    const auto iv = interval(e.kind, s);
    if (!digest_mode(e.kind, s) && p.held == 0 && (iv.count() == 0 || !p.last_sent || now - *p.last_sent >= iv)) {
        p.last_sent = now;
        return AlertMail{e.kind, e.subject, e.body};
    }
    if (p.held == 0) {
        p.held_since = now;
        p.held_since_unix = e.unix_time;
        p.lines.clear();
    }
    ++p.held;
    if (p.lines.size() < kMaxListed) p.lines.push_back(alert_time_text(e.unix_time) + "  " + e.line);
    return std::nullopt;
}

// digest - one mail for what kind k held.
AlertMail AlertLimiter::digest(AlertKind k, AlertTime now) {
    PerKind& p = kinds_[static_cast<std::size_t>(k)];
    AlertMail m;
    m.kind = k;
    m.subject = fmt::format("{} more {} since {}", p.held, plural(k), alert_time_text(p.held_since_unix));
    m.body = fmt::format("{} more {} since {}; alerts of one kind are limited to one mail per interval, and "
                         "the rest are listed here.\n\n",
                         p.held, plural(k), alert_time_text(p.held_since_unix));
    for (const auto& l : p.lines) m.body += "  " + l + "\n";
    if (p.held > p.lines.size()) m.body += fmt::format("  ... and {} more not listed\n", p.held - p.lines.size());
    p.held = 0;
    p.lines.clear();
    p.last_sent = now;
    return m;
}

// due - digests whose wait is over.
std::vector<AlertMail> AlertLimiter::due(const AlertSettings& s, AlertTime now) {
    std::vector<AlertMail> out;
    for (std::size_t i = 0; i < kinds_.size(); ++i) {
        PerKind& p = kinds_[i];
        if (p.held == 0) continue;
        const auto k = static_cast<AlertKind>(i);
        const auto iv = interval(k, s);
        const bool ready = digest_mode(k, s) ? now - p.held_since >= iv : (!p.last_sent || now - *p.last_sent >= iv);
        if (ready) out.push_back(digest(k, now));
    }
    return out;
}

// flush - every digest now (the daemon stops).
std::vector<AlertMail> AlertLimiter::flush() {
    std::vector<AlertMail> out;
    for (std::size_t i = 0; i < kinds_.size(); ++i)
        if (kinds_[i].held) out.push_back(digest(static_cast<AlertKind>(i), AlertTime{}));
    return out;
}

// observe - the load rule, one sample at a time.
std::optional<AlertEvent> LoadWatch::observe(std::size_t queued, unsigned threshold,
                                             std::chrono::milliseconds interval, AlertTime now,
                                             std::int64_t unix_now) {
    if (queued <= threshold) {
        above_since_.reset();
        return std::nullopt;
    }
    if (!above_since_) {
        above_since_ = now;
        peak_ = 0;
    }
    peak_ = std::max(peak_, queued);
    if (now - *above_since_ < interval || (last_alert_ && now - *last_alert_ < interval)) return std::nullopt;
    last_alert_ = now;
    const auto above = std::chrono::duration_cast<std::chrono::milliseconds>(now - *above_since_);
    AlertEvent e;
    e.kind = AlertKind::Load;
    e.unix_time = unix_now;
    e.subject = fmt::format("load exceeded: {} parts waiting for a scanner (LoadThreshold {})", queued, threshold);
    e.line = fmt::format("InScannerQueue {} (peak {}) above LoadThreshold {} for {}", queued, peak_, threshold,
                         seconds_text(above));
    e.body = fmt::format(
        "The scan queue (InScannerQueue) has been above LoadThreshold {} for {}.\n"
        "Parts waiting now: {}; peak while above: {}.\n\n"
        "The scanners are slower than the mail arriving: check their health (icap-milter's log, the ICAP "
        "servers' load) or add scanners. Messages that wait past MessageScanTimeout get OnFail.\n"
        "At most one load alert is sent per LoadAlertInterval ({}).\n",
        threshold, seconds_text(above), queued, peak_, seconds_text(interval));
    return e;
}

// rebase - forget the up/down baselines (a reload built a new pool).
void PoolWatch::rebase() {
    for (auto& [name, seen] : seen_) seen.down_known = false;
}

// self_test_failure - the self-test text when it failed something.
std::string self_test_failure(const ServerStatus& s) {
    if (!s.misses.empty() || s.self_test.rfind("missed", 0) == 0) return s.self_test;
    return {};
}

// observe - compare with the last snapshot, server by server (by name).
std::vector<AlertEvent> PoolWatch::observe(const std::vector<ServerStatus>& servers,
                                           std::chrono::milliseconds max_age, AlertTime now, std::int64_t unix_now) {
    std::vector<AlertEvent> out;
    auto add = [&](AlertKind k, std::string subject, std::string line, std::string body) {
        out.push_back(AlertEvent{k, unix_now, std::move(subject), std::move(line), std::move(body)});
    };
    for (const ServerStatus& s : servers) {
        const std::string name = sanitize(s.name, 200);
        Seen& seen = seen_[s.name];
        if (seen.down_known && s.down != seen.down) {
            if (s.down)
                add(AlertKind::ScannerDown, "scanner " + name + " is down", "scanner " + name + " down",
                    "The ICAP server " + name + " stopped answering and gets no mail until a probe succeeds.\n"
                    "Last error: " + sanitize(s.last_error.empty() ? "-" : s.last_error, 300) + "\n"
                    "Consecutive failures: " + std::to_string(s.failures) + "\n\n"
                    "Mail goes to the other scanners; with none up it gets OnFail.\n");
            else
                add(AlertKind::ScannerUp, "scanner " + name + " is back up", "scanner " + name + " up",
                    "The ICAP server " + name + " answers again and gets mail.\n");
        }
        seen.down = s.down;
        seen.down_known = true;

        if (!s.istag.empty()) {
            if (seen.istag.empty()) {
                seen.istag_since = now; // first sight: the age counts from here
                seen.istag_since_unix = unix_now;
            } else if (s.istag != seen.istag) {
                const std::string from = sanitize(seen.istag, 80), to = sanitize(s.istag, 80);
                add(AlertKind::DefinitionsUpdated, "definitions updated on " + name + ": " + from + " -> " + to,
                    name + ": " + from + " -> " + to,
                    "The virus definitions of " + name + " changed (ISTag " + from + " -> " + to + ").\n" +
                        (s.version_info.empty() ? "" : "Version: " + sanitize(s.version_info, 200) + "\n") +
                        "Previous ISTag seen since " + alert_time_text(seen.istag_since_unix) + ".\n");
                seen.istag_since = now;
                seen.istag_since_unix = unix_now;
                seen.stale_alerted.reset();
            }
            seen.istag = s.istag;
            if (max_age.count() > 0 && now - seen.istag_since >= max_age &&
                (!seen.stale_alerted || now - *seen.stale_alerted >= max_age)) {
                seen.stale_alerted = now;
                add(AlertKind::DefinitionsStale, "definitions of " + name + " not updated since " +
                                                     alert_time_text(seen.istag_since_unix),
                    name + ": ISTag " + sanitize(s.istag, 80) + " unchanged",
                    "The ISTag of " + name + " (" + sanitize(s.istag, 80) + ") has not changed since " +
                        alert_time_text(seen.istag_since_unix) + ", longer than DefinitionsMaxAge.\n"
                        "Check the definition updates of the scanner (freshclam for ClamAV) and that the ICAP "
                        "server reloads them.\n");
            }
        }

        const std::string failure = self_test_failure(s);
        if (!failure.empty() && failure != seen.self_test_failure)
            add(AlertKind::SelfTest, "self-test of scanner " + name + " failing", name + ": " + sanitize(failure, 200),
                "The self-test of " + name + " failed: " + sanitize(failure, 300) + "\n" +
                    (s.gets_mail ? "It gets only the parts it proved it scans.\n"
                                 : "It gets no mail until it detects the EICAR test file.\n") +
                    (s.fix.empty() ? "" : "Fix: " + sanitize(s.fix, 400) + "\n"));
        seen.self_test_failure = failure;

        if (!s.tls_warning.empty() && s.tls_warning != seen.tls_warning)
            add(AlertKind::Certificate, "TLS certificate of scanner " + name + " expires soon or has expired",
                name + ": " + sanitize(s.tls_warning, 200),
                "The TLS certificate of " + name + ": " + sanitize(s.tls_warning, 300) +
                    "\nRenew it before it expires: an expired certificate fails verification, and the server "
                    "then gets no mail.\n");
        seen.tls_warning = s.tls_warning;
    }
    return out;
}

namespace {

// header_text - printable ASCII only (no CR, LF or controls), at most max bytes.
std::string header_text(std::string_view v, std::size_t max) {
    std::string out;
    for (char c : v) {
        if (out.size() >= max) break;
        unsigned char u = static_cast<unsigned char>(c);
        out += (u >= 32 && u < 127) ? c : '?';
    }
    return out;
}

// body_text - printable ASCII lines (tabs kept), each at most 900 bytes, 64 KiB in all.
std::string body_text(std::string_view v) {
    std::string out;
    std::size_t col = 0;
    for (char c : v) {
        if (out.size() >= 65536) {
            out += "\n[cut]\n";
            break;
        }
        if (c == '\n') {
            out += '\n';
            col = 0;
            continue;
        }
        if (col >= 900) continue;
        unsigned char u = static_cast<unsigned char>(c);
        out += (u >= 32 && u < 127) || c == '\t' ? c : '?';
        ++col;
    }
    if (!out.empty() && out.back() != '\n') out += '\n';
    return out;
}

// rfc5322_date - "Sat, 28 Nov 2026 01:02:03 +0000", independent of the locale.
std::string rfc5322_date(std::int64_t unix_time) {
    static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    std::time_t tt = static_cast<std::time_t>(unix_time);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    return fmt::format("{}, {:02} {} {} {:02}:{:02}:{:02} +0000", days[tm.tm_wday % 7], tm.tm_mday,
                       months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

} // namespace

// compose_alert_message - headers and body, LF line ends (the SMTP client makes CRLF).
std::string compose_alert_message(const AlertMail& mail, const AlertHeaders& h) {
    std::string to;
    for (const auto& a : h.to) to += (to.empty() ? "" : ", ") + header_text(a, 254);
    const std::string host = header_text(h.host, 253);
    std::string out;
    out += "Date: " + rfc5322_date(h.unix_time) + "\n";
    out += "From: " + header_text(h.from, 254) + "\n";
    out += "To: " + to + "\n";
    out += "Subject: [icap-milter] " + host + ": " + header_text(mail.subject, 300) + "\n";
    out += "Message-ID: <" + header_text(h.message_id, 200) + ">\n";
    out += "Auto-Submitted: auto-generated\n";
    out += std::string("X-Icap-Milter-Alert: ") + to_string(mail.kind) + "\n";
    out += "MIME-Version: 1.0\n";
    out += "Content-Type: text/plain; charset=us-ascii\n";
    out += "Content-Transfer-Encoding: 7bit\n";
    out += "\n";
    out += body_text(mail.body);
    out += "\n-- \nicap-milter on " + host + ", " + alert_time_text(h.unix_time) + "\n";
    return out;
}

} // namespace icapm
