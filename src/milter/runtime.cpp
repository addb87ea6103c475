// NAME
//   runtime.cpp - the current configuration snapshot and its scanner
// DIAGNOSTICS
//   make_runtime() throws std::runtime_error when the scanner cannot be
//   built (bad URI, unreadable CA file); reload keeps the old runtime then.
//   load_tls_files() warns for each TLS file it keeps from before because
//   it may no longer be read.
#include "icap-milter/milter/runtime.hpp"

#include "icap-milter/common/sha256.hpp"
#include "icap-milter/scan/self_test.hpp"

#include "icap-milter/scan/server_spec.hpp"

#include <pwd.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>

namespace icapm {

namespace {
std::mutex runtime_mutex;
std::shared_ptr<const Runtime> runtime_now;

// uses_tls - true when some IcapServer is icaps:// (a bad line: false,
// and building the scanner reports it).
bool uses_tls(const Config& config) {
    try {
        const auto specs = parse_server_specs(config.icap_servers);
        return std::any_of(specs.begin(), specs.end(), [](const ServerSpec& s) { return s.uri.tls; });
    } catch (const std::exception&) {
        return false;
    }
}

// user_name - who we run as, for log lines.
std::string user_name() {
    const passwd* pw = getpwuid(geteuid());
    return pw ? std::string(pw->pw_name) : "uid " + std::to_string(geteuid());
}
} // namespace

// load_tls_files - read what the TLS context will need; keep old contents
// of files the current user may not read.
std::shared_ptr<const TlsFiles> load_tls_files(const Config& config, const TlsFiles* previous,
                                               const TlsFileReader& read) {
    auto files = std::make_shared<TlsFiles>();
    if (!uses_tls(config)) return files;
    const std::pair<const char*, const std::string*> keys[] = {{"TlsCAFile", &config.tls_ca_file},
                                                               {"TlsCertFile", &config.tls_cert_file},
                                                               {"TlsKeyFile", &config.tls_key_file}};
    for (const auto& [key, path] : keys) {
        if (path->empty()) continue;
        TlsFileRead r = read(*path);
        if (r.error == 0) {
            files->set(*path, std::move(r.contents));
            continue;
        }
        const std::string* old = previous ? previous->find(*path) : nullptr;
        if (old && (r.error == EACCES || r.error == EPERM)) {
            files->set(*path, *old);
            spdlog::warn("reload: {} file={} is not readable by user {} ({}); the previously loaded contents "
                         "stay in use",
                         key, *path, user_name(), std::strerror(r.error));
        }
    }
    return files;
}

// current_runtime - snapshot under the lock.
std::shared_ptr<const Runtime> current_runtime() {
    std::lock_guard lock(runtime_mutex);
    return runtime_now;
}

// install_runtime - swap the snapshot; the old one lives on in its users.
void install_runtime(std::shared_ptr<const Runtime> rt) {
    std::shared_ptr<const Runtime> old;
    {
        std::lock_guard lock(runtime_mutex);
        old = std::exchange(runtime_now, std::move(rt));
    }
    // old is released here, outside the lock: its scanner may need to
    // drain and join threads.
}

// make_runtime - scanner, token keys, and the host name our headers name.
std::shared_ptr<const Runtime> make_runtime(std::shared_ptr<const Config> config, TokenKeys tokens,
                                            std::shared_ptr<const TlsFiles> tls_files) {
    auto rt = std::make_shared<Runtime>();
    rt->hostname = config->report_hostname;
    if (rt->hostname.empty()) {
        char name[HOST_NAME_MAX + 1] = {};
        if (gethostname(name, sizeof name - 1) == 0) rt->hostname = name;
        if (rt->hostname.empty()) rt->hostname = "localhost";
    }
    Sha256 h;
    h.update(dump_config(*config));
    rt->config_id = to_hex(h.finish()).substr(0, 16);
    rt->tokens = std::move(tokens);
    if (!config->scanner_self_test)
        spdlog::warn("ScannerSelfTest is off: scanners are not sent the EICAR canaries, so Clean rests on the "
                     "scanners' word (a 204 for a part a scanner skipped passes as Clean)");
    if (!config->quarantine_directory.empty())
        rt->quarantine = std::make_shared<QuarantineStore>(config->quarantine_directory);
    rt->scanner = std::make_shared<Scanner>(config, tls_files);
    rt->tls_files = std::move(tls_files);
    // One budget for the process: messages received before a reload and
    // after it share it, so a reload never doubles the RAM spools may hold.
    static const auto budget = std::make_shared<MemoryBudget>(0);
    budget->set_limit(config->spool_memory_total);
    rt->spool_budget = budget;
    rt->config = std::move(config);
    return rt;
}

} // namespace icapm
