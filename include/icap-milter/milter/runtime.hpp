// NAME
//   runtime.hpp - the running configuration and scanner, swapped on reload
// SUMMARY
//   Each SMTP connection takes a snapshot (shared_ptr<const Runtime>) when
//   it starts, so a SIGHUP reload never pulls a setting or a scanner out
//   from under a running message. The old scanner finishes its queued
//   work and stops when the last connection using it ends.
//   The TLS files (CA file, client certificate and key) are read before
//   the privilege drop and kept with the runtime; a reload reads them
//   again as User and keeps the old contents of any it may not read.
#pragma once

#include "icap-milter/config/config.hpp"
#include "icap-milter/net/tls.hpp"
#include "icap-milter/quarantine/store.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/token/keys.hpp"

#include <functional>
#include <memory>
#include <string>

namespace icapm {

struct Runtime {
    std::shared_ptr<const Config> config;
    std::shared_ptr<Scanner> scanner;
    std::string hostname; // ReportHostname or gethostname()
    TokenKeys tokens;     // own signing key and trusted keys (read before the privilege drop)
    std::string config_id; // the token's configID: SHA-256 (16 hex) of the effective settings
    std::shared_ptr<const TlsFiles> tls_files; // TlsCAFile, TlsCertFile, TlsKeyFile as read (by path)
    std::shared_ptr<QuarantineStore> quarantine; // QuarantineDirectory's store, null when unset
    std::shared_ptr<MemoryBudget> spool_budget;  // SpoolMemoryTotal, shared by every spool
};

// current_runtime - the snapshot new connections use.
std::shared_ptr<const Runtime> current_runtime();
// install_runtime - make rt the snapshot for connections that start from now on.
void install_runtime(std::shared_ptr<const Runtime> rt);
// make_runtime - build a runtime (starts scanner threads); throws on bad
// settings. tokens are loaded by the caller (load_token_keys before the
// privilege drop; reload_trusted_keys on reload), and so are tls_files
// (load_tls_files); a path tls_files lacks is read when the TLS context
// is built.
std::shared_ptr<const Runtime> make_runtime(std::shared_ptr<const Config> config, TokenKeys tokens = {},
                                            std::shared_ptr<const TlsFiles> tls_files = nullptr);

// TlsFileReader - how load_tls_files reads one file (a seam for tests).
using TlsFileReader = std::function<TlsFileRead(const std::string&)>;

// load_tls_files - read TlsCAFile, TlsCertFile and TlsKeyFile when an
// icaps:// server is configured. previous (the running runtime's files,
// on reload) supplies the contents of a file that may not be read now
// (EACCES/EPERM after the privilege drop), with a warning naming it.
// Any other failure leaves the path out: building the TLS context then
// reads it and reports the error.
std::shared_ptr<const TlsFiles> load_tls_files(const Config& config, const TlsFiles* previous,
                                               const TlsFileReader& read = read_tls_file);

} // namespace icapm
