// NAME
//   inflight.hpp - the messages being scanned right now (icap-milterctl queue)
// SUMMARY
//   A connection thread enters its message when it hands the parts to the
//   scanner and leaves when the verdicts are in, through an RAII ticket;
//   the scanner's workers count each part down as its verdict arrives.
//   The control socket's `queue` command lists the entries, oldest first.
// DIAGNOSTICS
//   None: entering never fails and never blocks on anything but a short lock.
#pragma once

#include "icap-milter/common/lock_guarded.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <string>
#include <vector>

namespace icapm {

// InFlightEntry - one message as the `queue` command shows it.
struct InFlightEntry {
    std::string queue_id;  // the MTA's queue id ("NOQUEUE" before it has one)
    std::string job_id;    // "Job-7"
    std::int64_t age_ms = 0;
    std::size_t parts = 0;   // parts handed to the scanner
    std::size_t pending = 0; // ... still without a verdict
};

class InFlight {
public:
    // Ticket - an entered message; leaves the registry when destroyed.
    class Ticket {
    public:
        Ticket(InFlight* registry, std::uint64_t id, std::shared_ptr<std::atomic<std::size_t>> pending) noexcept
            : registry_(registry), id_(id), pending_(std::move(pending)) {}
        Ticket(Ticket&& o) noexcept
            : registry_(std::exchange(o.registry_, nullptr)), id_(o.id_), pending_(std::move(o.pending_)) {}
        Ticket& operator=(Ticket&&) = delete;
        Ticket(const Ticket&) = delete;
        ~Ticket();
        // pending - the counter the workers count down (shared: a worker may
        // finish a part after the message gave up waiting for it).
        const std::shared_ptr<std::atomic<std::size_t>>& pending() const noexcept { return pending_; }

    private:
        InFlight* registry_; // not owned: the registry outlives its tickets
        std::uint64_t id_;
        std::shared_ptr<std::atomic<std::size_t>> pending_;
    };

    // enter - register a message with parts parts, all pending.
    Ticket enter(std::string queue_id, std::string job_id, std::size_t parts);
    // snapshot - at most max entries, oldest first; *more gets how many were left out.
    std::vector<InFlightEntry> snapshot(std::size_t max, std::size_t* more) const;
    // size - messages in flight now.
    std::size_t size() const;

private:
    struct Entry {
        std::string queue_id, job_id;
        std::chrono::steady_clock::time_point since;
        std::size_t parts = 0;
        std::shared_ptr<std::atomic<std::size_t>> pending;
    };
    // leave - drop one entry (the ticket's destructor).
    void leave(std::uint64_t id) noexcept;

    struct Table {
        std::uint64_t next_id = 0;
        std::map<std::uint64_t, Entry> entries; // by id: oldest first
    };
    LockGuarded<Table> table_;
};

// inflight - the process's registry.
InFlight& inflight();

} // namespace icapm
