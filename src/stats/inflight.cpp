// NAME
//   inflight.cpp - the registry of messages being scanned
// SUMMARY
//   A map under one mutex, keyed by an increasing id so iteration is
//   oldest first. The lock is held only to copy or erase an entry.
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
    std::lock_guard lock(mutex_);
    const std::uint64_t id = next_id_++;
    entries_.emplace(id, Entry{std::move(queue_id), std::move(job_id), std::chrono::steady_clock::now(), parts, pending});
    return Ticket(this, id, std::move(pending));
}

// leave - erase; never throws (called from a destructor).
void InFlight::leave(std::uint64_t id) noexcept {
    std::lock_guard lock(mutex_);
    entries_.erase(id);
}

// snapshot - copies of the oldest max entries, with their age now.
std::vector<InFlightEntry> InFlight::snapshot(std::size_t max, std::size_t* more) const {
    const auto now = std::chrono::steady_clock::now();
    std::vector<InFlightEntry> out;
    std::lock_guard lock(mutex_);
    out.reserve(std::min(max, entries_.size()));
    for (const auto& [id, e] : entries_) {
        if (out.size() >= max) break;
        InFlightEntry v;
        v.queue_id = e.queue_id;
        v.job_id = e.job_id;
        v.age_ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.since).count();
        v.parts = e.parts;
        v.pending = e.pending ? e.pending->load() : 0;
        out.push_back(std::move(v));
    }
    if (more) *more = entries_.size() - out.size();
    return out;
}

// size - how many entries there are.
std::size_t InFlight::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

// inflight - one registry per process.
InFlight& inflight() {
    static InFlight r;
    return r;
}

} // namespace icapm
