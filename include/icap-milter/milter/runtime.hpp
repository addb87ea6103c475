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
#include "icap-milter/token/keys.hpp"

#include <memory>
#include <string>

namespace icapm {

struct Runtime {
    std::shared_ptr<const Config> config;
    std::shared_ptr<Scanner> scanner;
    std::string hostname; // ReportHostname or gethostname()
    TokenKeys tokens;     // own signing key and trusted keys (read before the privilege drop)
    std::string config_id; // the token's configID: SHA-256 (16 hex) of the effective settings
};

// current_runtime - the snapshot new connections use.
std::shared_ptr<const Runtime> current_runtime();
// install_runtime - make rt the snapshot for connections that start from now on.
void install_runtime(std::shared_ptr<const Runtime> rt);
// make_runtime - build a runtime (starts scanner threads); throws on bad
// settings. tokens are loaded by the caller (load_token_keys before the
// privilege drop; reload_trusted_keys on reload).
std::shared_ptr<const Runtime> make_runtime(std::shared_ptr<const Config> config, TokenKeys tokens = {});

} // namespace icapm
