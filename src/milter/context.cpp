// NAME
//   context.cpp - message state construction and the job counter
#include "icap-milter/milter/context.hpp"

#include <atomic>

namespace icapm {

// MessageContext - empty message with a spool sized from the config,
// its RAM charged to budget (SpoolMemoryTotal) when there is one.
MessageContext::MessageContext(const Config& config, std::shared_ptr<MemoryBudget> budget)
    : job(next_job_id()), queue_id("NOQUEUE"),
      spool(std::make_shared<Spool>(config.temp_directory, static_cast<std::size_t>(config.spool_memory_limit),
                                    std::move(budget))),
      started(std::chrono::steady_clock::now()) {}

// next_job_id - 1, 2, 3 ... for the life of the process.
unsigned long next_job_id() {
    static std::atomic<unsigned long> counter{0};
    return ++counter;
}

} // namespace icapm
