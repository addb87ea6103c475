// NAME
//   control_commands.cpp - stats, health, queue, loglevel and reload for the control socket
// SUMMARY
//   Each command reads a snapshot (the counters, the current runtime's
//   scanner, the in-flight registry) and renders it; nothing here holds a
//   lock longer than the copy, so the milter's threads never wait for it.
// DIAGNOSTICS
//   loglevel logs "control: log level set to X" at notice (info) level.
#include "icap-milter/stats/control_commands.hpp"

#include "icap-milter/common/date_text.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/milter/runtime.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdio>
#include <ctime>

namespace icapm {

namespace {


// or_unknown - text, or "unknown" when empty.
std::string or_unknown(const std::string& s) { return s.empty() ? std::string("unknown") : s; }

// state_word - up, down or pending, from a server snapshot.
const char* state_word(const ServerStatus& s) {
    if (s.down) return "down";
    return s.health == Health::Pending ? "pending" : "up";
}

// stats_reply - the counters with the live queue length.
ControlReply stats_reply(bool json) {
    const auto rt = current_runtime();
    std::string text = with_queue_length(counters().render(), rt && rt->scanner ? rt->scanner->queued() : 0);
    if (!json) return {true, text};
    return {true, stats_json(text).dump(2)};
}

// health_reply - gather the view and render it.
ControlReply health_reply(bool json) {
    const auto rt = current_runtime();
    if (!rt || !rt->scanner) return {false, "not running yet (no scanner)"};
    HealthView h;
    h.overall = to_string(rt->scanner->health());
    h.pool = counters().scanner_health();
    h.servers = rt->scanner->servers();
    h.in_queue = rt->scanner->queued();
    h.in_flight = inflight().size();
    return {true, render_health(h, json)};
}

// loglevel_reply - every logger's level, now. notice has no spdlog level: it is info.
ControlReply loglevel_reply(const std::string& level) {
    const std::string effective = level == "notice" ? "info" : level;
    if (!log_set_level(effective)) return {false, "unknown log level " + level};
    spdlog::info("control: log level set to {} (a reload applies LogLevel from the configuration again)", effective);
    return {true, "log level " + effective + " (until the next reload, which applies LogLevel from the configuration)"};
}

} // namespace

// with_queue_length - insert the live InScannerQueue after SentToScanner (else at the end).
std::string with_queue_length(std::string text, std::size_t in_queue) {
    const std::string line = "InScannerQueue: " + std::to_string(in_queue) + "\n";
    const std::string after = "SentToScanner: ";
    auto p = text.find(after);
    if (p != std::string::npos && (p == 0 || text[p - 1] == '\n')) {
        auto nl = text.find('\n', p);
        text.insert(nl == std::string::npos ? text.size() : nl + 1, line);
        return text;
    }
    if (!text.empty() && text.back() != '\n') text += '\n';
    return text + line;
}

// stats_json - one member per line; a value of digits only is a number.
nlohmann::json stats_json(std::string_view text) {
    nlohmann::json j = nlohmann::json::object();
    while (!text.empty()) {
        auto nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        auto colon = line.find(": ");
        if (colon == std::string_view::npos || colon == 0) continue;
        const std::string name(line.substr(0, colon));
        std::string_view value = line.substr(colon + 2);
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (!value.empty() && ec == std::errc{} && end == value.data() + value.size())
            j[name] = n;
        else
            j[name] = std::string(value);
    }
    return j;
}

// render_health - overall lines, then one block per scanner.
std::string render_health(const HealthView& h, bool json) {
    if (json) {
        nlohmann::json j;
        j["Health"] = h.overall;
        j["LastHealthCheck"] = iso_time_text(h.pool.last_health_check);
        j["LastVirusDefinitionSignature"] = h.pool.last_signature;
        j["LastVirusDefinitionVersion"] = h.pool.last_signature_info;
        j["LastVirusSignatureUpdate"] = iso_time_text(h.pool.last_signature_update);
        j["ScannerSelfTest"] = h.pool.self_test;
        j["InScannerQueue"] = h.in_queue;
        j["InFlight"] = h.in_flight;
        j["Scanners"] = nlohmann::json::array();
        for (const auto& s : h.servers) {
            nlohmann::json o;
            o["Name"] = s.name;
            o["State"] = state_word(s);
            o["Health"] = to_string(s.health);
            o["LastCheck"] = iso_time_text(s.last_check);
            o["ISTag"] = s.istag;
            o["Version"] = s.version_info;
            o["DefinitionsSince"] = iso_time_text(s.last_definition_update);
            o["SelfTest"] = s.self_test;
            o["GetsMail"] = s.gets_mail;
            o["SelfTestMisses"] = s.misses;
            o["SelfTestFix"] = s.fix;
            o["ConnectionsInUse"] = s.outstanding;
            o["ConnectionsOpen"] = s.open;
            o["ConnectionCap"] = s.cap;
            o["Requests"] = s.requests;
            o["Failures"] = s.failures;
            o["LatencyLastMs"] = s.last_latency_ms;
            o["LatencyAvgMs"] = s.avg_latency_ms < 0 ? -1.0 : static_cast<double>(static_cast<long long>(s.avg_latency_ms * 10)) / 10;
            o["LastError"] = s.last_error;
            o["TlsWarning"] = s.tls_warning;
            j["Scanners"].push_back(std::move(o));
        }
        return j.dump(2);
    }
    std::string out;
    out += "Health: " + h.overall + "\n";
    out += "LastHealthCheck: " + iso_time_text(h.pool.last_health_check) + "\n";
    out += "LastVirusDefinitionSignature: " + or_unknown(h.pool.last_signature);
    if (!h.pool.last_signature_info.empty()) out += " (" + h.pool.last_signature_info + ")";
    out += "\nLastVirusSignatureUpdate: " + iso_time_text(h.pool.last_signature_update) + "\n";
    out += "InScannerQueue: " + std::to_string(h.in_queue) + "\n";
    out += "InFlight: " + std::to_string(h.in_flight) + "\n";
    out += "Scanners: " + std::to_string(h.servers.size()) + "\n";
    for (const auto& s : h.servers) {
        out += "Scanner: " + s.name + "\n";
        out += fmt::format("  State: {} ({})\n", state_word(s), to_string(s.health));
        out += "  LastCheck: " + iso_time_text(s.last_check) + "\n";
        out += "  ISTag: " + or_unknown(s.istag) + (s.version_info.empty() ? "" : " (" + s.version_info + ")") + "\n";
        out += "  DefinitionsSince: " + iso_time_text(s.last_definition_update) + "\n";
        out += "  SelfTest: " + s.self_test + (s.gets_mail ? "" : " (gets no mail)") + "\n";
        if (!s.misses.empty()) out += fmt::format("  SelfTestMisses: {}\n", fmt::join(s.misses, ", "));
        if (!s.fix.empty()) out += "  SelfTestFix: " + s.fix + "\n";
        out += fmt::format("  Connections: in_use={} open={} cap={}\n", s.outstanding, s.open, s.cap);
        out += fmt::format("  Requests: {} Failures: {}\n", s.requests, s.failures);
        if (s.last_latency_ms < 0)
            out += "  Latency: none yet\n";
        else
            out += fmt::format("  Latency: last={}ms avg={:.1f}ms\n", s.last_latency_ms, s.avg_latency_ms);
        if (!s.last_error.empty()) out += "  LastError: " + s.last_error + "\n";
        if (!s.tls_warning.empty()) out += "  TlsWarning: " + s.tls_warning + "\n";
    }
    return out;
}

// render_queue - a count line, one line per message, and how many were left out.
std::string render_queue(const std::vector<InFlightEntry>& entries, std::size_t more, bool json) {
    if (json) {
        nlohmann::json j;
        j["InFlight"] = entries.size() + more;
        j["Messages"] = nlohmann::json::array();
        for (const auto& e : entries)
            j["Messages"].push_back({{"QueueId", e.queue_id},
                                     {"JobId", e.job_id},
                                     {"AgeMs", e.age_ms},
                                     {"Parts", e.parts},
                                     {"Pending", e.pending}});
        j["More"] = more;
        return j.dump(2);
    }
    std::string out = "InFlight: " + std::to_string(entries.size() + more) + "\n";
    for (const auto& e : entries)
        out += fmt::format("{} {} age_ms={} parts={} pending={}\n", sanitize(e.queue_id, 40), e.job_id, e.age_ms,
                           e.parts, e.pending);
    if (more) out += "... " + std::to_string(more) + " more\n";
    return out;
}

// run_control_command - dispatch.
ControlReply run_control_command(const ControlRequest& r, const ControlActions& actions) {
    switch (r.verb) {
    case ControlRequest::Verb::Stats: return stats_reply(r.json);
    case ControlRequest::Verb::Health: return health_reply(r.json);
    case ControlRequest::Verb::Queue: {
        std::size_t more = 0;
        auto entries = inflight().snapshot(kMaxQueueEntries, &more);
        return {true, render_queue(entries, more, r.json)};
    }
    case ControlRequest::Verb::LogLevel: return loglevel_reply(r.arg);
    case ControlRequest::Verb::Reload:
        if (!actions.reload) return {false, "reload is not available"};
        return actions.reload();
    }
    return {false, "unknown command"};
}

} // namespace icapm
