// NAME
//   metrics.hpp - the Prometheus /metrics endpoint (MetricsListen)
// SUMMARY
//   MetricsServer listens on MetricsListen with prometheus-cpp's Exposer
//   (civetweb), serves GET /metrics in the text exposition format, and
//   is the process's ScanObserver while it lives: the scan-time
//   histograms and the messages-being-scanned gauge are fed by the hooks
//   of stats/observer.hpp; everything else is read from Counters and the
//   running scanner at scrape time (stats/collect.hpp). Only the daemon
//   (and the unit tests) link it; this header holds no Prometheus type.
//   The daemon opens it at start, before the privilege drop (so a port
//   below 1024 works too); a scrape runs on civetweb's own two threads,
//   never on a milter or scan thread, and takes no lock a message holds
//   for long.
// DIAGNOSTICS
//   The constructor throws std::runtime_error naming the address and the
//   system's reason ("Address already in use") when it cannot listen.
#pragma once

#include "icap-milter/net/listen_address.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace icapm {

class MetricsServer {
public:
    // MetricsServer - listen on where and install the scan observer.
    explicit MetricsServer(const ListenAddress& where);
    // ~MetricsServer - uninstall the observer, then stop listening.
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // port - the port bound (where.port, or the kernel's pick for port 0).
    std::uint16_t port() const;
    // scrape - the text a GET /metrics returns now (for tests and tools).
    std::string scrape() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace icapm
