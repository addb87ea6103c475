// NAME
//   observer.cpp - the installed ScanObserver and the two timers
#include "icap-milter/stats/observer.hpp"

#include <atomic>

namespace icapm {

namespace {
std::atomic<ScanObserver*> installed{nullptr};

// seconds_since - steady time from start to now, in seconds.
double seconds_since(std::chrono::steady_clock::time_point start) noexcept {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}
} // namespace

// set_scan_observer - publish o to the hooks.
void set_scan_observer(ScanObserver* o) noexcept { installed.store(o, std::memory_order_release); }

// scan_observer - what the hooks report to.
ScanObserver* scan_observer() noexcept { return installed.load(std::memory_order_acquire); }

// PartTimer - no clock read when nobody listens.
PartTimer::PartTimer() noexcept : observer_(scan_observer()) {
    if (observer_) start_ = std::chrono::steady_clock::now();
}

// done - only verdicts a server gave: an Error carries no scan time worth a bucket.
void PartTimer::done(const Verdict& v) const noexcept {
    if (observer_ && v.kind != VerdictKind::Error) observer_->part_scanned(v.server, seconds_since(start_));
}

// MessageTimer - the gauge goes up while the message is worked on.
MessageTimer::MessageTimer() noexcept : observer_(scan_observer()) {
    if (!observer_) return;
    start_ = std::chrono::steady_clock::now();
    observer_->message_started();
}

// ~MessageTimer - the histogram gets the time, the gauge goes down.
MessageTimer::~MessageTimer() {
    if (observer_) observer_->message_done(seconds_since(start_));
}

} // namespace icapm
