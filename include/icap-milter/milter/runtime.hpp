// NAME
//   runtime.hpp - the running configuration and scanner, swapped on reload
// SUMMARY
//   Each SMTP connection takes a snapshot (shared_ptr<const Runtime>) when
//   it starts, so a SIGHUP reload never pulls a setting or a scanner out
//   from under a running message. The old scanner finishes its queued
//   work and stops when the last connection using it ends.
#pragma once

#include "icap-milter/config/config.hpp"
#include "icap-milter/scan/scanner.hpp"

#include <memory>
#include <string>

namespace icapm {

struct Runtime {
    std::shared_ptr<const Config> config;
    std::shared_ptr<Scanner> scanner;
    std::string hostname; // ReportHostname or gethostname()
};

// current_runtime - the snapshot new connections use.
std::shared_ptr<const Runtime> current_runtime();
// install_runtime - make rt the snapshot for connections that start from now on.
void install_runtime(std::shared_ptr<const Runtime> rt);
// make_runtime - build a runtime (starts scanner threads); throws on bad settings.
std::shared_ptr<const Runtime> make_runtime(std::shared_ptr<const Config> config);

} // namespace icapm
