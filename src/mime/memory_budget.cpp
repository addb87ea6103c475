// NAME
//   memory_budget.cpp - RAM shared by every spool of the process
// SUMMARY
//   A lock-free counter: a charge is a compare-and-swap that never lets
//   the total pass the limit, so concurrent spools cannot overshoot it.
#include "icap-milter/mime/memory_budget.hpp"

namespace icapm {

// try_charge - add n to the total unless that would pass the limit.
bool MemoryBudget::try_charge(std::uint64_t n) noexcept {
    const std::uint64_t limit = limit_.load(std::memory_order_relaxed);
    std::uint64_t cur = used_.load(std::memory_order_relaxed);
    do {
        if (n > limit || cur > limit - n) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
    return true;
}

// release - subtract n (never below zero).
void MemoryBudget::release(std::uint64_t n) noexcept {
    std::uint64_t cur = used_.load(std::memory_order_relaxed);
    while (!used_.compare_exchange_weak(cur, cur >= n ? cur - n : 0, std::memory_order_relaxed)) {
    }
}

} // namespace icapm
