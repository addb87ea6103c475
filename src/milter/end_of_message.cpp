// NAME
//   end_of_message.cpp - the work done at end of message
// SUMMARY
//   Walk the spooled message into scan items, send the scannable ones to
//   the worker pool, give the others their Unscannable verdict, and let
//   policy decide. Per-part lines are logged at debug level with Job-N.M.
// DIAGNOSTICS
//   Any exception (parse failure, temp file trouble, internal error) is
//   logged at error level and becomes the OnFail decision; nothing
//   escapes to libmilter.
#include "icap-milter/milter/end_of_message.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/mime/walker.hpp"
#include "icap-milter/stats/counters.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

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
    if (d.status == "Infected")
        ++k.infected;
    else if (d.status == "Clean")
        ++k.virus_free;
    else
        ++k.unscanned;
}

} // namespace

// process_message - walk, scan, decide.
Outcome process_message(const Runtime& rt, MessageContext& msg, const std::function<void()>& progress) {
    Outcome out;
    const Config& c = *rt.config;
    const std::string job = "Job-" + std::to_string(msg.job);
    try {
        if (msg.spool_failed) {
            spdlog::error("{}: {}: message not spooled: {}", msg.queue_id, job, msg.spool_error);
            out.decision = fail_decision(c, "spool: " + msg.spool_error);
            count_outcome(out.decision);
            return out;
        }
        WalkLimits limits;
        limits.max_depth = c.max_mime_depth;
        limits.max_parts = c.max_mime_parts;
        limits.max_scan_size = c.max_scan_size;
        limits.temp_dir = c.temp_directory;
        limits.memory_limit = static_cast<std::size_t>(c.spool_memory_limit);
        WalkResult walk = walk_message(msg.spool, limits);
        if (walk.limit_hit)
            spdlog::warn("{}: {}: MIME limit reached ({}); the whole raw message is scanned as part 0", msg.queue_id,
                         job, sanitize(walk.limit_reason));
        if (walk.ambiguous)
            spdlog::info("{}: {}: ambiguous MIME; the whole raw message is scanned too as part 0", msg.queue_id, job);
        for (const auto& w : walk.warnings) spdlog::debug("{}: {}: MIME: {}", msg.queue_id, job, sanitize(w));

        const auto& items = walk.items;
        out.parts = items.size();
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
            tasks.push_back({scan_name(item), job + "." + std::to_string(i + 1), item.data});
            task_index.push_back(i);
        }
        counters().sent_to_scanner += tasks.size();
        auto results = rt.scanner->scan(std::move(tasks), progress);
        for (const auto& r : results)
            if (r.kind != VerdictKind::Error) ++counters().scanned;
        for (std::size_t k = 0; k < results.size() && k < task_index.size(); ++k)
            verdicts[task_index[k]] = std::move(results[k]);

        for (std::size_t i = 0; i < items.size(); ++i) {
            const auto& item = items[i];
            const auto& v = verdicts[i];
            spdlog::debug("{}: {}.{}: part={} file=\"{}\" type={} size={} verdict={}{}{}", msg.queue_id, job, i + 1,
                          item.part_id, sanitize(item.filename, 120), sanitize(item.content_type, 80), item.size,
                          to_string(v.kind), v.reason.empty() ? "" : " reason=", sanitize(v.reason, 160));
            if (!out.parts_log.empty()) out.parts_log += ' ';
            out.parts_log += part_label(item, v);
            if (!v.server.empty()) {
                std::string who = v.server + (v.istag.empty() ? "" : " ISTag=\"" + sanitize(v.istag, 40) + "\"");
                if (out.scanners.find(who) == std::string::npos)
                    out.scanners += (out.scanners.empty() ? "" : ", ") + who;
            }
        }
        out.decision = decide(c, verdicts);
    } catch (const std::exception& e) {
        spdlog::error("{}: {}: {}", msg.queue_id, job, sanitize(e.what()));
        out.decision = fail_decision(c, e.what());
    }
    count_outcome(out.decision);
    return out;
}

} // namespace icapm
