// NAME
//   inflight.cpp - the registry of messages being scanned
// SUMMARY
//   A map under one mutex (LockGuarded), keyed by an increasing id so
//   iteration is oldest first. The lock is held only to copy or erase.
#include "icap-milter/stats/inflight.hpp"

#include <algorithm>

namespace icapm {

// ~Ticket - the message is done (or gave up): out of the registry.
InFlight::Ticket::~Ticket() {
    if (registry_) registry_->leave(id_);
}

// enter - a new entry with every part pending.
InFlight::Ticket InFlight::enter(std::string queue_id, std::string job_id, std::size_t parts) {
    auto pending = std::make_shared<std::atomic<std::size_t>>(parts);
    auto t = table_.lock();
    const std::uint64_t id = t->next_id++;
    t->entries.emplace(id, Entry{std::move(queue_id), std::move(job_id), std::chrono::steady_clock::now(), parts, pending});
    return Ticket(this, id, std::move(pending));
}

// leave - erase; never throws (called from a destructor).
void InFlight::leave(std::uint64_t id) noexcept {
    table_.lock()->entries.erase(id);
}

// snapshot - copies of the oldest max entries, with their age now.
std::vector<InFlightEntry> InFlight::snapshot(std::size_t max, std::size_t* more) const {
    const auto now = std::chrono::steady_clock::now();
    std::vector<InFlightEntry> out;
    const auto t = table_.lock();
    out.reserve(std::min(max, t->entries.size()));
    for (const auto& [id, e] : t->entries) {
        if (out.size() >= max) break;
        InFlightEntry v;
        v.queue_id = e.queue_id;
        v.job_id = e.job_id;
        v.age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.since).count();
        v.parts = e.parts;
        v.pending = e.pending ? e.pending->load() : 0;
        out.push_back(std::move(v));
    }
    if (more) *more = t->entries.size() - out.size();
    return out;
}

// size - how many entries there are.
std::size_t InFlight::size() const {
    return table_.lock()->entries.size();
}

// inflight - one registry per process.
InFlight& inflight() {
    static InFlight r;
    return r;
}

} // namespace icapm
