// NAME
//   collect.hpp - the statistics as Prometheus metric families
// SUMMARY
//   StatsCollectable reads the existing Counters (atomics) and the
//   current scanner pool's snapshot when Prometheus scrapes, so the mail
//   path counts each event once, in Counters, and pays nothing for the
//   metrics. Families (see icap-milter(8), METRICS): the counters as
//   icap_milter_*_total; gauges for the scan queue, the messages being
//   scanned, the open SMTP sessions, per scanner its connections, state,
//   health and self-test, the overall health, the last definition update
//   and health check. The histograms of scan times live in the endpoint's
//   registry (metrics.cpp), not here.
// DIAGNOSTICS
//   Collect() never throws; a source that is missing (no scanner yet)
//   leaves its families out or at zero.
#pragma once

#include "icap-milter/scan/pool.hpp"
#include "icap-milter/stats/counters.hpp"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace icapm {

class Scanner;

// StatsSources - where a scrape reads from (the process's globals in the
// daemon; local objects in tests).
struct StatsSources {
    const Counters* counters = nullptr;                 // required
    std::function<std::shared_ptr<Scanner>()> scanner;  // the running scanner, may give nullptr
    std::function<std::int64_t()> messages_in_scan;     // messages in end-of-message work now
    std::function<std::uint64_t()> milter_sessions;     // SMTP sessions open now
};

// StatsCollectable - the counters and gauges, built at scrape time.
class StatsCollectable : public prometheus::Collectable {
public:
    explicit StatsCollectable(StatsSources sources) : sources_(std::move(sources)) {}
    // Collect - every family, in a stable order.
    std::vector<prometheus::MetricFamily> Collect() const override;

private:
    StatsSources sources_;
};

// health_label - a Health as a label value: pending, validated, warnings, error.
const char* health_label(Health health) noexcept;

} // namespace icapm
