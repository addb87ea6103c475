// NAME
//   collect.cpp - Counters and the scanner pool as Prometheus families
// SUMMARY
//   Names follow Prometheus practice: icap_milter_ prefix, _total for
//   counters, _seconds and _timestamp_seconds for times. Every counter of
//   counter_table() (the list render() prints) has a family; the seed's
//   name is in the help text.
//   Label values from the network (ISTags) are cut to printable ASCII
//   and 64 characters.
#include "icap-milter/stats/collect.hpp"

#include "icap-milter/policy/bypass.hpp"
#include "icap-milter/scan/scanner.hpp"

#include <array>
#include <utility>

namespace icapm {

namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

// family - an empty family of a type.
MetricFamily family(const char* name, const char* help, MetricType type) {
    MetricFamily f;
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
}

// sample - one metric with labels and a value of the family's type.
ClientMetric sample(MetricType type, double value, std::vector<ClientMetric::Label> labels = {}) {
    ClientMetric m;
    m.label = std::move(labels);
    if (type == MetricType::Counter)
        m.counter.value = value;
    else
        m.gauge.value = value;
    return m;
}

// one - a family holding a single unlabelled value.
MetricFamily one(const char* name, const char* help, MetricType type, double value) {
    MetricFamily f = family(name, help, type);
    f.metric.push_back(sample(type, value));
    return f;
}

// label_text - a network-supplied value made safe and short for a label.
std::string label_text(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (out.size() >= 64) break;
        out += (c >= 32 && c < 127) ? c : '?';
    }
    return out;
}

// counter_families - counter_table(), the actions, the bypass rules and
// the token rejections.
void counter_families(const Counters& k, std::vector<MetricFamily>& out) {
    for (const CounterInfo& c : counter_table())
        if (*c.metric) out.push_back(one(c.metric, c.help, MetricType::Counter, static_cast<double>((k.*c.field).load())));

    MetricFamily skipped = family("icap_milter_skipped_by_rule_total",
                                  "Messages let through unscanned, per bypass rule (Skipped.*).", MetricType::Counter);
    for (BypassRule r : {BypassRule::ClientNetworks, BypassRule::Authenticated, BypassRule::Senders,
                         BypassRule::Recipients})
        skipped.metric.push_back(sample(MetricType::Counter,
                                        static_cast<double>(k.skipped_by[static_cast<std::size_t>(r)].load()),
                                        {{"rule", to_string(r)}}));
    out.push_back(std::move(skipped));

    MetricFamily actions = family("icap_milter_actions_total", "Messages per final action (Action.*).",
                                  MetricType::Counter);
    for (Action a : {Action::Accept, Action::Reject, Action::Discard, Action::Tempfail, Action::Hold, Action::Redirect,
                     Action::Notify, Action::Clean})
        actions.metric.push_back(sample(MetricType::Counter,
                                        static_cast<double>(k.actions[static_cast<std::size_t>(a)].load()),
                                        {{"action", to_string(a)}}));
    out.push_back(std::move(actions));

    // Every rejection has a reason; reasons past the 64 kept by Counters are "other".
    MetricFamily rejected = family("icap_milter_tokens_rejected_total",
                                   "Scan tokens that failed verification, per reason (Token.Rejected.*).",
                                   MetricType::Counter);
    std::uint64_t listed = 0;
    for (const auto& [reason, n] : k.rejected_reasons()) {
        listed += n;
        rejected.metric.push_back(sample(MetricType::Counter, static_cast<double>(n), {{"reason", label_text(reason)}}));
    }
    const std::uint64_t total = k.token_rejected.load();
    if (total > listed)
        rejected.metric.push_back(sample(MetricType::Counter, static_cast<double>(total - listed), {{"reason", "other"}}));
    out.push_back(std::move(rejected));
}

// health_states - the four states, for one-hot gauges.
constexpr std::array<Health, 4> kHealthStates{Health::Pending, Health::Validated, Health::Warnings, Health::Error};

// scanner_families - per-server gauges and the overall health.
void scanner_families(const Scanner& scanner, std::vector<MetricFamily>& out) {
    const std::vector<ServerStatus> servers = scanner.servers();
    MetricFamily up = family("icap_milter_scanner_up",
                             "1 when the scanner may get mail (not down, not failed), else 0.", MetricType::Gauge);
    MetricFamily state = family("icap_milter_scanner_health",
                                "1 for the scanner's health state (pending, validated, warnings, error), 0 for the "
                                "others.",
                                MetricType::Gauge);
    MetricFamily in_use = family("icap_milter_scanner_connections_in_use",
                                 "Requests in flight to the scanner now.", MetricType::Gauge);
    MetricFamily open = family("icap_milter_scanner_connections_open",
                               "Connections to the scanner that exist now (idle and in use).", MetricType::Gauge);
    MetricFamily cap = family("icap_milter_scanner_connections_max",
                              "The scanner's connection cap now.", MetricType::Gauge);
    MetricFamily failures = family("icap_milter_scanner_consecutive_failures",
                                   "Failed exchanges in a row (the circuit breaker's count).", MetricType::Gauge);
    MetricFamily requests = family("icap_milter_scanner_requests_total", "Scans handed to the scanner.",
                                   MetricType::Counter);
    MetricFamily self_test = family("icap_milter_scanner_self_test_passed",
                                    "1 when the scanner's last self-test found every canary, else 0 (absent "
                                    "with ScannerSelfTest off).",
                                    MetricType::Gauge);
    MetricFamily defs = family("icap_milter_scanner_definitions_info",
                               "1, labelled with the scanner's definition signature (ISTag).", MetricType::Gauge);
    for (const ServerStatus& s : servers) {
        const std::vector<ClientMetric::Label> who{{"server", s.name}};
        const bool usable = !s.down && s.health != Health::Error && s.gets_mail;
        up.metric.push_back(sample(MetricType::Gauge, usable ? 1 : 0, who));
        for (Health h : kHealthStates)
            state.metric.push_back(sample(MetricType::Gauge, s.health == h ? 1 : 0,
                                          {{"server", s.name}, {"state", health_label(h)}}));
        in_use.metric.push_back(sample(MetricType::Gauge, s.outstanding, who));
        open.metric.push_back(sample(MetricType::Gauge, s.open, who));
        cap.metric.push_back(sample(MetricType::Gauge, s.cap, who));
        failures.metric.push_back(sample(MetricType::Gauge, s.failures, who));
        requests.metric.push_back(sample(MetricType::Counter, static_cast<double>(s.requests), who));
        if (s.self_test != "off")
            self_test.metric.push_back(sample(MetricType::Gauge, s.self_test.rfind("passed", 0) == 0 ? 1 : 0, who));
        if (!s.istag.empty())
            defs.metric.push_back(sample(MetricType::Gauge, 1, {{"server", s.name}, {"istag", label_text(s.istag)}}));
    }
    for (auto* f : {&up, &state, &in_use, &open, &cap, &failures, &requests, &self_test, &defs})
        out.push_back(std::move(*f));

    const Health overall = scanner.health();
    MetricFamily health = family("icap_milter_health",
                                 "1 for the pool's overall health state (pending, validated, warnings, error), 0 for "
                                 "the others.",
                                 MetricType::Gauge);
    for (Health h : kHealthStates)
        health.metric.push_back(
            sample(MetricType::Gauge, overall == h ? 1 : 0, {{"state", health_label(h)}}));
    out.push_back(std::move(health));
    out.push_back(one("icap_milter_scan_queue_length", "Parts waiting in the scan queue now (InScannerQueue).",
                      MetricType::Gauge, static_cast<double>(scanner.queued())));
}

} // namespace

// health_label - short, lower-case state names for labels.
const char* health_label(Health health) noexcept {
    switch (health) {
    case Health::Pending: return "pending";
    case Health::Validated: return "validated";
    case Health::Warnings: return "warnings";
    case Health::Error: return "error";
    }
    return "unknown";
}

// Collect - counters first, then gauges; nothing here blocks on I/O.
std::vector<MetricFamily> StatsCollectable::Collect() const {
    std::vector<MetricFamily> out;
    try {
        if (!sources_.counters) return out;
        counter_families(*sources_.counters, out);
        std::shared_ptr<Scanner> scanner = sources_.scanner ? sources_.scanner() : nullptr;
        if (scanner)
            scanner_families(*scanner, out);
        else
            out.push_back(one("icap_milter_scan_queue_length", "Parts waiting in the scan queue now (InScannerQueue).",
                              MetricType::Gauge, 0));
        if (sources_.messages_in_scan)
            out.push_back(one("icap_milter_messages_in_scan", "Messages in end-of-message work (walk and scan) now.",
                              MetricType::Gauge, static_cast<double>(sources_.messages_in_scan())));
        if (sources_.milter_sessions)
            out.push_back(one("icap_milter_milter_sessions", "SMTP sessions (milter connections) open now.",
                              MetricType::Gauge, static_cast<double>(sources_.milter_sessions())));
        const ScannerHealth h = sources_.counters->scanner_health();
        out.push_back(one("icap_milter_definitions_updated_timestamp_seconds",
                          "Unix time a scanner's definition signature (ISTag) last changed; 0 = not since start.",
                          MetricType::Gauge, static_cast<double>(h.last_signature_update)));
        out.push_back(one("icap_milter_last_health_check_timestamp_seconds",
                          "Unix time of the last scanner health round; 0 = none yet.", MetricType::Gauge,
                          static_cast<double>(h.last_health_check)));
    } catch (...) {
        // A scrape must not take the process down: what was built is served.
    }
    return out;
}

} // namespace icapm
