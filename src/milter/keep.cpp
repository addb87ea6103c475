// NAME
//   keep.cpp - the milter's side of the quarantine store
// DIAGNOSTICS
//   keep_copy() lets std::system_error through (the caller tempfails and
//   counts it); enforce_quarantine() logs its own errors.
#include "icap-milter/milter/keep.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/stats/counters.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>

namespace icapm {

namespace {

// due - does QuarantineCopy cover a message of this status?
// A skipped message was never spooled (callbacks.cpp): nothing to keep.
// A blocked one is a finding like an infected one.
bool due(const std::string& copy, MessageStatus s) {
    if (s == MessageStatus::Skipped) return false;
    if (copy == "all") return true;
    if (copy == "infected") return s == MessageStatus::Infected || s == MessageStatus::Blocked;
    if (copy == "unscannable") return s != MessageStatus::Clean;
    return false;
}

std::atomic<std::int64_t> last_enforced{0}; // Unix seconds of the last enforce()

} // namespace

// release_claimed - the store decides: released, same body, not claimed.
bool release_claimed(const Runtime& rt, const MessageContext& msg) {
    if (!rt.quarantine || msg.release_id.empty()) return false;
    if (!valid_quarantine_id(msg.release_id)) return false;
    try {
        auto src = msg.spool->reader();
        return rt.quarantine->claim_release(msg.release_id, body_digest(*src));
    } catch (const std::exception& e) {
        spdlog::error("{}: Job-{}: quarantine: release check of {} failed: {}", msg.queue_id, msg.job,
                      sanitize(msg.release_id, 64), sanitize(e.what()));
        return false;
    }
}

// keep_copy - one copy with its metadata.
std::string keep_copy(const Runtime& rt, const MessageContext& msg, const Outcome& out, Action action,
                      const std::string& client) {
    if (!rt.quarantine || !due(rt.config->quarantine_copy, out.decision.status)) return {};
    if (msg.too_big) return {}; // spooled only up to MaxMessageSize: no copy of a part of it
    QuarantineEntry meta;
    meta.queue_id = msg.queue_id;
    meta.job_id = "Job-" + std::to_string(msg.job);
    meta.client = client;
    meta.sender = msg.sender;
    meta.recipients = msg.rcpts;
    meta.verdicts = out.parts_log;
    meta.viruses = out.decision.threats;
    meta.status = out.decision.status;
    meta.action = action;
    QuarantineEntry e = rt.quarantine->store(*msg.spool, std::move(meta));
    ++counters().quarantine_stored;
    counters().quarantine_bytes += e.size;
    return e.id;
}

// enforce_quarantine - retention and size, rate-limited across threads.
void enforce_quarantine(const Runtime& rt) {
    if (!rt.quarantine) return;
    const Config& c = *rt.config;
    const auto retention = std::chrono::duration_cast<std::chrono::seconds>(c.quarantine_retention);
    const std::int64_t every = std::clamp<std::int64_t>(retention.count() / 2, 1, 60);
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    std::int64_t last = last_enforced.load();
    if (now - last < every || !last_enforced.compare_exchange_strong(last, now)) return;
    try {
        QuarantineRemoved r = rt.quarantine->enforce(retention, c.quarantine_max_size, now);
        for (const auto& id : r.ids) spdlog::info("quarantine: removed {} (QuarantineRetention/QuarantineMaxSize)", id);
        counters().quarantine_expired += r.ids.size();
    } catch (const std::exception& e) {
        spdlog::error("quarantine: enforcing retention in {} failed: {}", c.quarantine_directory, sanitize(e.what()));
    }
}

} // namespace icapm
