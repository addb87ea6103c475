// NAME
//   rules.cpp - vendor verdict rules for RESPMOD replies
// SUMMARY
//   Markers are searched before the status is trusted, because vendors
//   answer an infection with 200 (c-icap, Kaspersky, Sophos...), with an
//   encapsulated HTTP 403 (McAfee), or with vendor headers (F-Secure).
//   X-Infection-Found Type=2 (Symantec container / policy violation) is
//   a block named after the violation. A 200 without markers is clean
//   only if the server echoed exactly the bytes it was sent; a body cut
//   short or changed, a replacement page (HTTP error or redirect) and a
//   206 are the scanner blocking the content: Infected, "blocked by
//   scanner". c-icap truncates a streamed body (SendPercentData) when it
//   finds a virus late, and that must never pass as clean or unscannable.
// DIAGNOSTICS
//   Pure; unexpected values degrade towards "infected" or "error", never
//   towards "clean".
#include "icap-milter/icap/rules.hpp"
#include "icap-milter/common/ascii.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <utility>

namespace icapm {

namespace {

// parse_small_uint - decimal up to 9 digits; nullopt otherwise.
std::optional<unsigned> parse_small_uint(std::string_view s) noexcept {
    s = trim(s);
    if (s.empty() || s.size() > 9) return std::nullopt;
    unsigned v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

// contains_ci - whether list holds name (ASCII case-insensitive).
bool contains_ci(const std::vector<std::string>& list, std::string_view name) {
    return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return iequals(s, name); });
}

// add_name - keep a cleaned, deduplicated, bounded list of names.
void add_name(std::vector<std::string>& list, std::string_view raw) {
    std::string name = clean_threat_name(raw);
    if (name.empty() || list.size() >= kMaxThreats || contains_ci(list, name)) return;
    list.push_back(std::move(name));
}

// add_signal - note which header fired (once per header name).
void add_signal(Markers& m, std::string signal) {
    if (!contains_ci(m.signals, signal)) m.signals.push_back(std::move(signal));
}

// InfectionRecord - one Type/Threat group of X-Infection-Found.
struct InfectionRecord {
    std::optional<unsigned> type;
    bool type_seen = false;
    std::string threat;
    bool threat_seen = false;
};

// parse_infection_found - "Type=0; Resolution=2; Threat=NAME;" possibly
// repeated within one value; a new Type= or Threat= starts a new record.
std::vector<InfectionRecord> parse_infection_found(std::string_view v) {
    std::vector<InfectionRecord> out;
    InfectionRecord cur;
    while (!v.empty() && out.size() < kMaxThreats) {
        auto semi = v.find(';');
        auto item = trim(v.substr(0, semi));
        v.remove_prefix(semi == std::string_view::npos ? v.size() : semi + 1);
        auto eq = item.find('=');
        if (eq == std::string_view::npos) continue;
        auto key = trim(item.substr(0, eq));
        auto val = unquote(item.substr(eq + 1));
        if (iequals(key, "Type")) {
            if (cur.type_seen) out.push_back(std::exchange(cur, {}));
            cur.type_seen = true;
            cur.type = parse_small_uint(val);
        } else if (iequals(key, "Threat")) {
            if (cur.threat_seen) out.push_back(std::exchange(cur, {}));
            cur.threat_seen = true;
            cur.threat = std::string(val);
        }
    }
    if (cur.type_seen || cur.threat_seen) out.push_back(std::move(cur));
    return out;
}

// violation_names - threat names of X-Violations-Found: a count, then four
// folded lines per violation (filename, threat, violation id, disposition).
// nullopt when the value cannot be read (still a marker).
std::optional<std::vector<std::string>> violation_names(const HeaderField& f) {
    std::vector<std::string> lines;
    for (const auto& l : f.lines)
        if (!trim(l).empty()) lines.emplace_back(trim(l));
    if (lines.empty()) return std::nullopt;
    auto count = parse_small_uint(lines[0]);
    if (!count && lines.size() == 1) {
        // Unfolded on one line: "1 file name 0 0" - only usable when every
        // field is one word, i.e. exactly 1 + 4*count words.
        std::vector<std::string> words;
        std::string_view v = lines[0];
        while (!(v = trim(v)).empty() && words.size() < 1 + 4 * kMaxThreats) {
            auto sp = v.find_first_of(" \t");
            words.emplace_back(v.substr(0, sp));
            v.remove_prefix(sp == std::string_view::npos ? v.size() : sp);
        }
        auto c = words.empty() ? std::nullopt : parse_small_uint(words[0]);
        if (!c || words.size() != 1 + 4 * static_cast<std::size_t>(*c)) return std::nullopt;
        lines = std::move(words);
        count = c;
    }
    if (!count) return std::nullopt;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < *count && i < kMaxThreats; ++i) {
        std::size_t idx = 1 + 4 * i + 1;
        if (idx >= lines.size()) break;
        names.push_back(lines[idx]);
    }
    return names;
}

// status_text - what a failing ICAP status means, for the log.
std::string_view status_text(int status) noexcept {
    switch (status) {
    case 400: return "bad request";
    case 404: return "ICAP service not found";
    case 405: return "method not allowed for service";
    case 408: return "request timeout";
    case 418: return "scanner error (McAfee/Skyhigh)";
    case 500: return "server error";
    case 501: return "method not implemented";
    case 502: return "bad gateway";
    case 503: return "service overloaded or unavailable";
    case 505: return "ICAP version not supported";
    case 539: return "scanner not licensed (Symantec)";
    default: return "error";
    }
}

// join - names separated by ", ".
std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += ", ";
        out += s;
    }
    return out;
}

} // namespace

// unquote - "\"name\"" -> "name".
std::string_view unquote(std::string_view s) noexcept {
    s = trim(s);
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = trim(s.substr(1, s.size() - 2));
    return s;
}

// clean_threat_name - hostile text made safe for SMTP replies and headers.
std::string clean_threat_name(std::string_view raw) {
    raw = unquote(raw);
    std::string out;
    for (unsigned char c : raw) {
        if (out.size() >= kMaxThreatName) break;
        char x = (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
        if (x == ' ' && (out.empty() || out.back() == ' ')) continue; // collapse blanks
        out.push_back(x);
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// find_markers - every infection signal, vendor by vendor.
Markers find_markers(const IcapResponse& r) {
    Markers m;
    const Headers& h = r.headers;

    // c-icap, squidclamav, Symantec, Sophos, ESET, Trend, OPSWAT, Bitdefender.
    for (const auto* f : h.find_all("X-Infection-Found")) {
        add_signal(m, "X-Infection-Found");
        auto recs = parse_infection_found(f->value);
        if (recs.empty()) {
            m.infected = true;
            continue;
        }
        for (const auto& rec : recs) {
            if (rec.type && *rec.type == 2) {
                add_name(m.policy, rec.threat.empty() ? "container/policy violation" : rec.threat);
            } else {
                // Type 0 (virus), 1 (mail policy), or unknown: infected.
                m.infected = true;
                add_name(m.threats, rec.threat);
            }
        }
    }

    // X-Virus-ID: Kaspersky KWTS says "no threats" on clean objects.
    for (const auto* f : h.find_all("X-Virus-ID")) {
        auto v = unquote(f->value);
        if (iequals(v, "no threats")) continue;
        if (!v.empty() && contains_ci(m.policy, clean_threat_name(v))) continue;
        add_signal(m, "X-Virus-ID");
        m.infected = true;
        add_name(m.threats, v);
    }

    // X-Violations-Found: names already reported as Type=2 stay "policy".
    for (const auto* f : h.find_all("X-Violations-Found")) {
        auto names = violation_names(*f);
        if (names && names->empty() && parse_small_uint(f->lines.front()) == 0u) continue; // "0"
        add_signal(m, "X-Violations-Found");
        if (!names) {
            m.infected = true;
            continue;
        }
        bool any = false;
        for (const auto& n : *names) {
            if (contains_ci(m.policy, clean_threat_name(n))) continue;
            any = true;
            add_name(m.threats, n);
        }
        if (any || names->empty()) m.infected = true;
    }

    // Block signals say "blocked" but not why; their values only name the
    // threat if nothing else does.
    std::vector<std::string> fallback;
    bool blocked = false;
    for (const auto* f : h.find_all("X-Response-Info")) {
        if (!istarts_with(trim(f->value), "blocked")) continue;
        add_signal(m, "X-Response-Info");
        blocked = true;
    }
    for (const char* name : {"X-Blocked-Reason", "X-Block-Reason", "X-Blocked"}) {
        for (const auto* f : h.find_all(name)) {
            add_signal(m, name);
            blocked = true;
            add_name(fallback, f->value);
        }
    }

    // F-Secure.
    auto fs_names = h.find_all("X-FSecure-Infection-Name");
    const HeaderField* fs = h.find("X-FSecure-Scan-Result");
    if ((fs && !iequals(unquote(fs->value), "clean")) || (!fs && !fs_names.empty())) {
        add_signal(m, "X-FSecure-Scan-Result");
        m.infected = true;
        for (const auto* f : fs_names) add_name(m.threats, f->value);
        if (fs) add_name(fallback, fs->value);
    }

    // An encapsulated HTTP 4xx is a block page (McAfee 403 VirusFound, c-icap 403).
    if (r.http_status >= 400 && r.http_status < 500) {
        add_signal(m, fmt::format("HTTP {}", r.http_status));
        blocked = true;
        add_name(fallback, fmt::format("blocked by scanner (HTTP {} {})", r.http_status, r.http_reason));
    }

    // A block with a Type=2 violation is that violation's block page
    // (Symantec), so it stays "unscannable"; any other block is infected.
    if (blocked && m.policy.empty()) m.infected = true;

    if (m.infected && m.threats.empty()) {
        if (!fallback.empty())
            m.threats.push_back(fallback.front());
        else
            m.threats.push_back("unknown threat");
    }
    return m;
}

// classify_respmod - markers first, then the status, then the echo check.
Verdict classify_respmod(const IcapResponse& r, const SentBody& sent) {
    Verdict v;
    v.icap_status = r.status;
    if (r.status < 200 || r.status >= 300) {
        v.kind = VerdictKind::Error;
        v.reason = fmt::format("ICAP {} {} ({})", r.status, clean_threat_name(r.reason), status_text(r.status));
        if (const auto* ec = r.headers.find("X-Error-Code"))
            v.reason += fmt::format(", X-Error-Code: {}", clean_threat_name(ec->value));
        return v;
    }
    Markers m = find_markers(r);
    if (m.infected) {
        v.kind = VerdictKind::Infected;
        v.threats = std::move(m.threats);
        v.reason = "infected (" + join(m.signals) + ")";
        return v;
    }
    if (!m.policy.empty()) {
        // A container / policy violation (Symantec Type=2) is the scanner
        // refusing the content: blocked, named after its marker.
        v.kind = VerdictKind::Infected;
        v.threats = std::move(m.policy);
        v.reason = "blocked by scanner: container/policy violation (" + join(m.signals) + ")";
        return v;
    }
    if (r.status == 204) {
        v.kind = VerdictKind::Clean;
        return v;
    }
    if (r.status != 200 && r.status != 206) {
        v.kind = VerdictKind::Error;
        v.reason = fmt::format("unexpected ICAP status {}", r.status);
        return v;
    }
    // 200 without markers: clean only as an exact echo. Anything else is
    // the scanner blocking or altering the content (c-icap cuts the body
    // short when it finds a virus after it began streaming it back), and a
    // 206 is by definition altered content.
    std::string how;
    if (r.status == 206)
        how = "ICAP 206: the scanner returned altered content";
    else if (!sent.complete)
        how = "answered 200 before receiving the whole item";
    else if (r.http_status == 0)
        how = "200 without an encapsulated HTTP response";
    else if (r.http_status != 200)
        how = fmt::format("content replaced with HTTP {} {}", r.http_status, clean_threat_name(r.http_reason));
    else if (r.body_length != sent.length)
        how = fmt::format("returned {} of {} bytes", r.body_length, sent.length);
    else if (!sent.sha256 || r.body_sha256 != sent.sha256())
        how = "returned content differs";
    if (how.empty()) {
        v.kind = VerdictKind::Clean; // echoed unchanged (no Allow: 204 honoured)
        return v;
    }
    v.kind = VerdictKind::Infected;
    v.threats = {"blocked by scanner"};
    v.reason = "blocked by scanner: " + how;
    return v;
}

} // namespace icapm
