// NAME
//   metrics.cpp - the /metrics endpoint: Exposer, histograms, observer
// SUMMARY
//   The registry holds the two histograms (icap_milter_part_scan_seconds
//   per server, icap_milter_message_scan_seconds); StatsCollectable adds
//   the counters and gauges. civetweb runs with two threads and a request
//   timeout, so a slow scraper holds at most those threads, never mail.
// DIAGNOSTICS
//   Before civetweb gets the address, a test bind() finds the common
//   failures (address in use, not local, no permission) and the
//   constructor throws with strerror's words; civetweb's own failure
//   throws with a generic reason, or for an IPv6 address with the likely
//   one: Debian 12's civetweb is built without IPv6 (USE_IPV6).
#include "icap-milter/stats/metrics.hpp"

#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/milter/callbacks.hpp"
#include "icap-milter/milter/runtime.hpp"
#include "icap-milter/stats/collect.hpp"
#include "icap-milter/stats/observer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>

namespace icapm {

namespace {

// Buckets from 1 ms to 60 s: a clean part over loopback takes a few ms,
// a large archive seconds, and MessageScanTimeout is minutes.
const prometheus::Histogram::BucketBoundaries kBuckets{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                       0.5,   1,      2.5,   5,    10,    30,    60};

// More servers than any config names: a bound on the histogram's labels.
constexpr std::size_t kMaxServers = 256;

// check_bind - bind a throwaway socket to where, as civetweb will
// (SO_REUSEADDR), so a failure is reported with the system's reason.
void check_bind(const ListenAddress& where) {
    if (where.port == 0) return; // tests: the kernel picks, nothing to collide with
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (where.ipv6) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(where.port);
        inet_pton(AF_INET6, where.host.c_str(), &a->sin6_addr);
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(where.port);
        inet_pton(AF_INET, where.host.c_str(), &a->sin_addr);
        len = sizeof *a;
    }
    UniqueFd fd(socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::runtime_error("MetricsListen " + where.str() + ": socket: " + std::strerror(errno));
    const int on = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) != 0)
        throw std::runtime_error("MetricsListen " + where.str() + ": cannot listen: " + std::strerror(errno));
}

} // namespace

struct MetricsServer::Impl final : ScanObserver {
    std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
    prometheus::Family<prometheus::Histogram>& part_seconds =
        prometheus::BuildHistogram()
            .Name("icap_milter_part_scan_seconds")
            .Help("Time of one ICAP exchange that gave a part its verdict, per scanner.")
            .Register(*registry);
    prometheus::Histogram& message_seconds =
        prometheus::BuildHistogram()
            .Name("icap_milter_message_scan_seconds")
            .Help("End-of-message work per message (walk, scan, decision), in seconds.")
            .Register(*registry)
            .Add({}, kBuckets);
    std::atomic<std::int64_t> in_scan{0};
    // Family::Add builds a Histogram before it looks the labels up, so
    // each server's is found here instead (servers come from the config).
    std::mutex part_mutex;
    std::map<std::string, prometheus::Histogram*, std::less<>> part_by_server;
    std::shared_ptr<StatsCollectable> stats;
    std::unique_ptr<prometheus::Exposer> exposer;

    // part_scanned - one observation in the server's histogram.
    void part_scanned(const std::string& server, double seconds) noexcept override {
        try {
            prometheus::Histogram* h = nullptr;
            {
                std::lock_guard lock(part_mutex);
                auto it = part_by_server.find(server);
                if (it == part_by_server.end()) {
                    if (part_by_server.size() >= kMaxServers) return;
                    it = part_by_server
                             .emplace(server, &part_seconds.Add({{"server", server.empty() ? "unknown" : server}},
                                                                kBuckets))
                             .first;
                }
                h = it->second;
            }
            h->Observe(seconds); // thread-safe on its own
        } catch (...) {
            // Out of memory for a new label: the observation is lost, the mail is not.
        }
    }
    // message_started - one more message being scanned.
    void message_started() noexcept override { ++in_scan; }
    // message_done - one fewer, and its time.
    void message_done(double seconds) noexcept override {
        --in_scan;
        message_seconds.Observe(seconds);
    }
};

// MetricsServer - sources, then the listener, then the hooks.
MetricsServer::MetricsServer(const ListenAddress& where) : impl_(std::make_unique<Impl>()) {
    StatsSources src;
    src.counters = &counters();
    src.scanner = [] {
        auto rt = current_runtime();
        return rt ? rt->scanner : nullptr;
    };
    src.messages_in_scan = [impl = impl_.get()] { return impl->in_scan.load(); };
    src.milter_sessions = [] { return static_cast<std::uint64_t>(active_connections()); };
    impl_->stats = std::make_shared<StatsCollectable>(std::move(src));

    check_bind(where);
    try {
        impl_->exposer = std::make_unique<prometheus::Exposer>(std::vector<std::string>{
            "listening_ports", where.str(), "num_threads", "2", "request_timeout_ms", "5000"});
    } catch (const std::exception& e) {
        // The test bind worked, so for IPv6 the likely cause is civetweb itself.
        if (where.ipv6)
            throw std::runtime_error("MetricsListen " + where.str() +
                                     ": cannot listen: prometheus-cpp's civetweb has no IPv6 support (Debian 12's "
                                     "is built without it); use an IPv4 address such as 127.0.0.1:" +
                                     std::to_string(where.port));
        throw std::runtime_error("MetricsListen " + where.str() + ": cannot listen (" + e.what() + ")");
    }
    impl_->exposer->RegisterCollectable(impl_->stats);
    impl_->exposer->RegisterCollectable(impl_->registry);
    set_scan_observer(impl_.get());
}

// ~MetricsServer - hooks off first, so no timer reaches a dying observer
// through a fresh load; then civetweb stops and joins its threads.
MetricsServer::~MetricsServer() {
    set_scan_observer(nullptr);
    impl_->exposer.reset();
}

// port - what civetweb bound.
std::uint16_t MetricsServer::port() const {
    const auto ports = impl_->exposer->GetListeningPorts();
    return ports.empty() ? 0 : static_cast<std::uint16_t>(ports.front());
}

// scrape - the collectables' families, serialised as the endpoint does.
std::string MetricsServer::scrape() const {
    std::vector<prometheus::MetricFamily> families = impl_->stats->Collect();
    for (auto& f : impl_->registry->Collect()) families.push_back(std::move(f));
    return prometheus::TextSerializer().Serialize(families);
}

} // namespace icapm
