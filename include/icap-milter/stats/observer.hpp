// NAME
//   observer.hpp - the scan path's hooks for metrics (Prometheus)
// SUMMARY
//   The scan path reports timings through one ScanObserver, installed by
//   the metrics endpoint (stats/metrics.hpp) while it runs. With no
//   observer (MetricsListen empty) a hook costs one atomic load and a
//   null check: the timers below read no clock then. The library holds
//   no Prometheus code; only the daemon links the endpoint.
//   PartTimer times one ICAP exchange and reports it when the part got a
//   verdict from a server; MessageTimer counts a message as being scanned
//   while it lives and reports its end-of-message time when it ends.
#pragma once

#include "icap-milter/icap/verdict.hpp"

#include <chrono>
#include <string>

namespace icapm {

// ScanObserver - what the metrics take from the scan path. Called from
// worker and milter threads at once: implementations are thread-safe
// and never throw.
class ScanObserver {
public:
    virtual ~ScanObserver() = default;
    // part_scanned - server gave a part its verdict after seconds of exchange.
    virtual void part_scanned(const std::string& server, double seconds) noexcept = 0;
    // message_started - a message's end-of-message work began.
    virtual void message_started() noexcept = 0;
    // message_done - that work ended after seconds, its verdict known.
    virtual void message_done(double seconds) noexcept = 0;
};

// set_scan_observer - install o (nullptr: none). o must outlive every
// hook that may still run; the endpoint uninstalls itself first thing
// when it stops.
void set_scan_observer(ScanObserver* o) noexcept;
// scan_observer - the installed observer, or nullptr.
ScanObserver* scan_observer() noexcept;

// PartTimer - one exchange's time, taken only while an observer is installed.
class PartTimer {
public:
    // PartTimer - start the clock if anyone listens.
    PartTimer() noexcept;
    // done - report the time if v is a server's verdict (not Error).
    void done(const Verdict& v) const noexcept;

private:
    ScanObserver* observer_;
    std::chrono::steady_clock::time_point start_{};
};

// MessageTimer - a message in end-of-message work, for the gauge and the histogram.
class MessageTimer {
public:
    // MessageTimer - count the message as being scanned, start its clock.
    MessageTimer() noexcept;
    // ~MessageTimer - report its time; it is no longer being scanned.
    ~MessageTimer();
    MessageTimer(const MessageTimer&) = delete;
    MessageTimer& operator=(const MessageTimer&) = delete;

private:
    ScanObserver* observer_;
    std::chrono::steady_clock::time_point start_{};
};

} // namespace icapm
