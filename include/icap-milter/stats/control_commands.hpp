// NAME
//   control_commands.hpp - what the control socket's commands answer
// SUMMARY
//   stats: every counter as "Name: value" lines (Counters::render, with
//   the live InScannerQueue), or one flat JSON object of the same names.
//   health: the pool's overall health and, per scanner, its state, last
//   check, ISTag and version, last definition update, self-test,
//   connections (in use/open/cap) and latency. queue: the messages being
//   scanned now (InFlight), oldest first, at most kMaxQueueEntries.
//   loglevel: the new level for every logger at once. reload: whatever
//   the daemon's reloader says (passed in, so this file needs no main()).
//   The renderers are pure functions of their inputs, for the unit tests.
// DIAGNOSTICS
//   A command that cannot run (no runtime yet, bad level) answers ok=false
//   with the reason.
#pragma once

#include "icap-milter/scan/pool.hpp"
#include "icap-milter/stats/control.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap-milter/stats/inflight.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// kMaxQueueEntries - the queue command lists at most this many messages.
constexpr std::size_t kMaxQueueEntries = 1000;

// ControlActions - what the commands need from the daemon.
struct ControlActions {
    // reload - reload the configuration as SIGHUP does and wait (bounded) for the result.
    std::function<ControlReply()> reload;
};

// run_control_command - answer one request (the ControlServer's handler).
ControlReply run_control_command(const ControlRequest& request, const ControlActions& actions);

// with_queue_length - counter lines with "InScannerQueue: n" after SentToScanner.
std::string with_queue_length(std::string text, std::size_t in_queue);

// stats_json - "Name: value" lines as one flat object: whole numbers as numbers, the rest as strings.
nlohmann::json stats_json(std::string_view text);

// HealthView - everything health shows, gathered.
struct HealthView {
    std::string overall;            // Pending validation | Service validated | Warnings | Error
    ScannerHealth pool;             // last check, last signature and its update, self-test
    std::vector<ServerStatus> servers;
    std::size_t in_queue = 0;       // InScannerQueue
    std::size_t in_flight = 0;      // messages being scanned
};

// render_health - the health reply, text or JSON.
std::string render_health(const HealthView& h, bool json);

// render_queue - the queue reply, text or JSON; more = entries left out.
std::string render_queue(const std::vector<InFlightEntry>& entries, std::size_t more, bool json);

} // namespace icapm
