// NAME
//   memory_budget.hpp - RAM shared by every spool of the process
// SUMMARY
//   SpoolMemoryLimit bounds one spool; MemoryBudget bounds them all
//   together (SpoolMemoryTotal). A spool charges its buffer before it
//   grows and, when the charge is refused, moves to its temp file
//   instead, so fifty sessions receiving large messages at once hold at
//   most the budget in RAM, not fifty times SpoolMemoryLimit. The page
//   cache behind the temp files is the kernel's to manage.
// DIAGNOSTICS
//   None: a refused charge is a normal outcome (the caller spills).
#pragma once

#include <atomic>
#include <cstdint>

namespace icapm {

class MemoryBudget {
public:
    // MemoryBudget - limit bytes in all (0: nothing may be charged).
    explicit MemoryBudget(std::uint64_t limit) noexcept : limit_(limit) {}
    MemoryBudget(const MemoryBudget&) = delete;
    MemoryBudget& operator=(const MemoryBudget&) = delete;

    // try_charge - take n bytes if they fit under the limit; false otherwise.
    bool try_charge(std::uint64_t n) noexcept;
    // release - give back n bytes taken before.
    void release(std::uint64_t n) noexcept;
    // used - bytes charged now.
    std::uint64_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    // limit - the total allowed.
    std::uint64_t limit() const noexcept { return limit_.load(std::memory_order_relaxed); }
    // set_limit - a new total (reload); charges above it stay until released.
    void set_limit(std::uint64_t limit) noexcept { limit_.store(limit, std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> limit_;
    std::atomic<std::uint64_t> used_{0};
};

} // namespace icapm
