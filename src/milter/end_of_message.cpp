// NAME
//   end_of_message.cpp - the work done at end of message
// SUMMARY
//   Walk the spooled message into scan items, send the scannable ones to
//   the worker pool, give the others their Unscannable verdict, and let
//   policy decide. Per-part lines are logged with Job-N.M: at info for
//   infected parts (every part with LogScanned all), else at debug.
//   Filters: BlockedExtensions/BlockedTypes make a message Blocked (its
//   parts are still scanned, so a virus makes it Infected instead);
//   ScanOnlyExtensions leaves named parts out as Unscannable; a message
//   over MaxMessageSize is not walked at all.
//   Scan token: a message carrying exactly one token header that
//   verifies (trusted signer, current scanner signature, same parts) is
//   accepted without scanning; any other token is counted with its
//   reason and stripped, and the message is scanned. A message whose
//   every part is scanned clean gets a new token when we have a key.
// DIAGNOSTICS
//   Any exception (parse failure, temp file trouble, internal error) is
//   logged at error level and becomes the OnFail decision; nothing
//   escapes to libmilter.
#include "icap-milter/milter/end_of_message.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/mime/walker.hpp"
#include "icap-milter/policy/filters.hpp"
#include "icap-milter/scan/content_class.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap-milter/stats/observer.hpp"
#include "icap-milter/stats/inflight.hpp"
#include "icap-milter/token/token.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

namespace icapm {

namespace {

// part_label - "1:clean", "2:infected(Eicar)", "3:unscannable(encrypted)".
std::string part_label(const ScanItem& item, const Verdict& v) {
    std::string out = item.part_id + ":" + to_string(v.kind);
    if (v.kind == VerdictKind::Infected) {
        std::string names;
        for (const auto& t : v.threats) names += (names.empty() ? "" : ",") + sanitize(t, 80);
        out += "(" + names + ")";
    } else if (v.kind != VerdictKind::Clean && !v.reason.empty()) {
        out += "(" + sanitize(v.reason, 80) + ")";
    }
    return out;
}

// scan_name - the file name the scanner sees (never empty, bounded).
std::string scan_name(const ScanItem& item) {
    std::string name = item.filename.empty() ? "part-" + item.part_id : item.filename;
    if (name.size() > 255) name.resize(255);
    return name;
}

// count_outcome - Examined plus the message's status counter.
void count_outcome(const Decision& d) {
    auto& k = counters();
    ++k.examined;
    switch (d.status) {
    case MessageStatus::Infected: ++k.infected; break;
    case MessageStatus::Clean: ++k.virus_free; break;
    case MessageStatus::Ambiguous: ++k.ambiguous_mime; break;
    case MessageStatus::Unscanned: ++k.unscanned; break;
    case MessageStatus::Blocked: ++k.blocked; break;
    case MessageStatus::Skipped: ++k.skipped; break;
    }
}

// check_token - verify the message's token headers against the walk;
// true when the scan may be skipped. Fills out.token_log/strip_tokens.
bool check_token(const Runtime& rt, const MessageContext& msg, const WalkResult& walk, const std::string& job,
                 Outcome& out) {
    const Config& c = *rt.config;
    VerifyResult r;
    if (!walk.hashable()) {
        r.reason = walk.limit_hit ? "mime-limit" : "ambiguous-mime";
        r.detail = "the message cannot be hashed reliably";
    } else {
        VerifyInput in;
        in.keys = rt.tokens.trusted.get();
        in.verification_hash = parts_hash(walk);
        in.now = static_cast<std::int64_t>(std::time(nullptr));
        in.skew = std::chrono::duration_cast<std::chrono::seconds>(c.token_clock_skew).count();
        if (msg.tokens.size() == 1) in.scan_versions = rt.scanner->cached_signatures(); // no I/O on this thread
        r = verify_token_headers(msg.tokens, in);
    }
    if (r.ok) {
        ++counters().token_trusted;
        out.token_log = "token=trusted signer=" + r.claims.key_thumbprint;
        out.scanners = "token from " + sanitize(r.claims.server, 100) + " signer=" + r.claims.key_thumbprint;
        spdlog::info("{}: {}: token=trusted signer={} server={} scanVersion=\"{}\": scan skipped", msg.queue_id, job,
                     r.claims.key_thumbprint, sanitize(r.claims.server, 100), sanitize(r.claims.scan_version, 40));
        return true;
    }
    counters().token_rejected_because(r.reason);
    out.strip_tokens = true;
    out.token_log = "token=rejected:" + r.reason;
    spdlog::info("{}: {}: token=rejected reason={} detail=\"{}\"{}: token header(s) removed, scanning", msg.queue_id,
                 job, r.reason, sanitize(r.detail, 200),
                 r.claims.key_thumbprint.empty() ? "" : " signer=" + sanitize(r.claims.key_thumbprint, 43));
    return false;
}

// sign_token - a new token when every part was scanned clean by scanners
// sharing one signature; "" otherwise (never for Unscanned, Infected or
// failures, nor for MIME we could not walk completely).
std::string sign_token(const Runtime& rt, const WalkResult& walk, const std::vector<Verdict>& verdicts,
                       const Decision& d) {
    if (!rt.tokens.own || d.action != Action::Accept || d.status != MessageStatus::Clean) return {};
    if (!walk.hashable() || verdicts.empty()) return {};
    std::string istag;
    for (const auto& v : verdicts) {
        if (v.kind != VerdictKind::Clean || v.istag.empty()) return {};
        if (istag.empty()) istag = v.istag;
        if (v.istag != istag) return {}; // scanners with different definitions: no single scanVersion
    }
    const Config& c = *rt.config;
    TokenClaims claims;
    claims.issuer = "icap-milter";
    claims.server = rt.hostname.substr(0, 255);
    claims.created = static_cast<std::int64_t>(std::time(nullptr));
    claims.expires = claims.created + std::chrono::duration_cast<std::chrono::seconds>(c.token_lifetime).count();
    claims.scan_version = istag;
    claims.config_name = c.config_name;
    claims.config_id = rt.config_id;
    claims.verification_hash = parts_hash(walk);
    return encode_token(std::move(claims), *rt.tokens.own);
}

} // namespace

// infected_files - names of the infected parts, views left out.
std::vector<std::string> infected_files(const Outcome& out) {
    std::vector<std::string> files;
    for (const auto& item : out.infected_items) {
        if (is_view_id(item.part_id) || files.size() >= 16) continue;
        files.push_back(item.filename.empty() ? "part " + item.part_id : item.filename);
    }
    if (files.empty() && !out.infected_items.empty()) files.push_back("(the whole message)");
    return files;
}

// infection_alert - the envelope and the verdicts, never the content.
InfectionAlert infection_alert(const MessageContext& msg, const Outcome& out, Action action, const std::string& client) {
    InfectionAlert a;
    a.queue_id = msg.queue_id;
    a.sender = msg.sender;
    a.recipients = msg.rcpts;
    a.recipient_count = msg.recipients;
    for (const auto& item : out.infected_items)
        for (const auto& t : item.threats)
            if (a.viruses.size() < 16 && std::find(a.viruses.begin(), a.viruses.end(), t) == a.viruses.end())
                a.viruses.push_back(t);
    a.files = infected_files(out);
    a.action = to_string(action);
    a.client = client;
    return a;
}

// skipped_outcome - a message a bypass rule let through unscanned.
Outcome skipped_outcome(const MessageContext& msg) {
    Outcome out;
    const BypassMatch& m = *msg.bypass;
    const std::string match = sanitize(m.match, 100);
    out.decision = skip_decision(std::string("skipped: ") + to_string(m.rule) + " matched " + match);
    out.scanners = std::string("not scanned: ") + to_string(m.rule);
    out.strip_tokens = true; // unchecked: never passed on
    out.token_log = std::string("rule=") + to_string(m.rule) + " match=" + match;
    count_outcome(out.decision);
    ++counters().skipped_by[static_cast<std::size_t>(m.rule)];
    return out;
}

// walk_limits - the MIME limits and ScanWholeMessage of c; decoded parts
// are charged to budget (SpoolMemoryTotal) when one is given.
WalkLimits walk_limits(const Config& c, std::shared_ptr<MemoryBudget> budget) {
    WalkLimits limits;
    limits.max_depth = c.max_mime_depth;
    limits.max_parts = c.max_mime_parts;
    limits.max_scan_size = c.max_scan_size;
    limits.temp_dir = c.temp_directory;
    limits.memory_limit = static_cast<std::size_t>(c.spool_memory_limit);
    limits.budget = std::move(budget);
    limits.whole_message = c.scan_whole_message == "never"       ? WholeMessage::Never
                           : c.scan_whole_message == "ambiguous" ? WholeMessage::Ambiguous
                                                                 : WholeMessage::Always;
    return limits;
}

// process_message - walk, check the token, scan, decide, sign.
Outcome process_message(const Runtime& rt, MessageContext& msg, const std::function<void()>& progress) {
    const MessageTimer timer; // metrics: messages being scanned, end-of-message time (nothing when off)
    Outcome out;
    const Config& c = *rt.config;
    const std::string job = "Job-" + std::to_string(msg.job);
    try {
        if (msg.spool_failed) {
            spdlog::error("{}: {}: message not spooled: error=\"{}\"", msg.queue_id, job,
                          sanitize_value(msg.spool_error, 300));
            out.decision = fail_decision(c, "spool: " + msg.spool_error);
            count_outcome(out.decision);
            return out;
        }
        if (msg.too_big) {
            spdlog::info("{}: {}: size={} over MaxMessageSize={}: not parsed, not scanned", msg.queue_id, job,
                         msg.received, c.max_message_size);
            std::vector<Verdict> v(1);
            v[0].kind = VerdictKind::Unscannable;
            v[0].reason = "message larger than MaxMessageSize";
            out.decision = decide(c, v);
            out.parts_log = "0:unscannable(message larger than MaxMessageSize)";
            count_outcome(out.decision);
            return out;
        }
        WalkResult walk = walk_message(msg.spool, walk_limits(c, rt.spool_budget));
        if (walk.limit_hit)
            spdlog::warn("{}: {}: MIME limit reached: limit=\"{}\" (the whole raw message is scanned as part 0)",
                         msg.queue_id, job, sanitize_value(walk.limit_reason));
        for (const auto& a : walk.ambiguities)
            spdlog::info("{}: {}: ambiguous MIME: reading=\"{}\"", msg.queue_id, job, sanitize_value(a, 300));
        for (const auto& a : walk.suspects)
            spdlog::info("{}: {}: MIME readers may differ: reading=\"{}\" (the whole-message view covers it)",
                         msg.queue_id, job, sanitize_value(a, 300));
        for (const auto& w : walk.warnings) spdlog::debug("{}: {}: MIME: {}", msg.queue_id, job, sanitize(w));

        const auto& items = walk.items;
        out.parts = items.size();
        const std::vector<BlockedPart> blocked = blocked_parts(c, items);
        for (const auto& b : blocked)
            spdlog::info("{}: {}: blocked part={} file=\"{}\" rule={}", msg.queue_id, job, b.part_id,
                         sanitize_value(b.filename, 200), sanitize(b.rule, 80));
        out.blocked_items = blocked;
        if (rt.tokens.enabled() && !msg.tokens.empty() && check_token(rt, msg, walk, job, out)) {
            std::vector<Verdict> trusted(items.size());
            for (std::size_t i = 0; i < items.size(); ++i) {
                trusted[i].kind = VerdictKind::Clean;
                out.parts_log += (out.parts_log.empty() ? "" : " ") + items[i].part_id + ":token";
            }
            out.decision = decide(c, trusted, {}, blocked);
            if (blocked.empty()) out.decision.reason = "scan token verified";
            count_outcome(out.decision);
            return out;
        }
        std::vector<Verdict> verdicts(items.size());
        std::vector<ScanTask> tasks;
        std::vector<std::size_t> task_index;
        for (std::size_t i = 0; i < items.size(); ++i) {
            const auto& item = items[i];
            if (!item.scannable || !item.data) {
                verdicts[i].kind = VerdictKind::Unscannable;
                verdicts[i].reason = item.unscannable_reason.empty() ? "unscannable" : item.unscannable_reason;
                continue;
            }
            if (scan_only_skips(c, item)) { // a weakening the administrator chose; never Clean
                verdicts[i].kind = VerdictKind::Unscannable;
                verdicts[i].reason = "not in ScanOnlyExtensions";
                continue;
            }
            // The class (archive, document) picks a scanner whose self-test proved it scans such files.
            tasks.push_back({scan_name(item), msg.queue_id + ": " + job + "." + std::to_string(i + 1), item.data,
                             sniff_class(*item.data->reader())});
            task_index.push_back(i);
        }
        counters().sent_to_scanner += tasks.size();
        // In the registry while its parts are with the scanner (icap-milterctl queue).
        const InFlight::Ticket in_flight = inflight().enter(msg.queue_id, job, tasks.size());
        for (auto& t : tasks) t.pending = in_flight.pending();
        auto results = rt.scanner->scan(std::move(tasks), progress);
        for (const auto& r : results)
            if (r.kind != VerdictKind::Error) ++counters().scanned;
        for (std::size_t k = 0; k < results.size() && k < task_index.size(); ++k)
            verdicts[task_index[k]] = std::move(results[k]);

        for (std::size_t i = 0; i < items.size(); ++i) {
            const auto& item = items[i];
            const auto& v = verdicts[i];
            // LogScanned: every part at info with all, else infected ones (the rest at debug).
            const bool loud = v.kind == VerdictKind::Infected || c.log_scanned == "all";
            std::string threats;
            for (const auto& t : v.threats) threats += (threats.empty() ? "" : ",") + sanitize_value(t, 80);
            spdlog::log(loud ? spdlog::level::info : spdlog::level::debug,
                        "{}: {}.{}: part={} file=\"{}\" type={} size={} server={} verdict={}{}{}{}{}", msg.queue_id,
                        job, i + 1, item.part_id, sanitize_value(item.filename, 120), sanitize(item.content_type, 80),
                        item.size, v.server.empty() ? "-" : sanitize(v.server, 200), to_string(v.kind),
                        threats.empty() ? "" : " threats=\"", threats, threats.empty() ? "" : "\"",
                        v.reason.empty() ? "" : " reason=\"" + sanitize_value(v.reason, 160) + "\"");
            if (!out.parts_log.empty()) out.parts_log += ' ';
            out.parts_log += part_label(item, v);
            if (v.kind == VerdictKind::Infected && out.infected_items.size() < 256)
                out.infected_items.push_back({item.part_id, item.filename, v.threats});
            if (!v.server.empty()) {
                std::string who = v.server + (v.istag.empty() ? "" : " ISTag=\"" + sanitize(v.istag, 40) + "\"");
                if (out.scanners.find(who) == std::string::npos)
                    out.scanners += (out.scanners.empty() ? "" : ", ") + who;
            }
        }
        out.decision = decide(c, verdicts, walk.ambiguous() ? walk.ambiguity() : std::string(), blocked);
        if (std::string token = sign_token(rt, walk, verdicts, out.decision); !token.empty()) {
            out.new_token = fold_token(token);
            out.strip_tokens = true; // an older token, if any, never stays beside ours
            ++counters().token_self;
            out.token_log += (out.token_log.empty() ? "" : " ") + std::string("token=signed");
        }
    } catch (const std::exception& e) {
        spdlog::error("{}: {}: {}", msg.queue_id, job, sanitize(e.what()));
        out.decision = fail_decision(c, e.what());
    }
    count_outcome(out.decision);
    return out;
}

} // namespace icapm
