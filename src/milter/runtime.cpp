// NAME
//   runtime.cpp - the current configuration snapshot and its scanner
// DIAGNOSTICS
//   make_runtime() throws std::runtime_error when the scanner cannot be
//   built (bad URI, unreadable CA file); reload keeps the old runtime then.
#include "icap-milter/milter/runtime.hpp"

#include "icap-milter/common/sha256.hpp"

#include <unistd.h>

#include <climits>
#include <mutex>

namespace icapm {

namespace {
std::mutex runtime_mutex;
std::shared_ptr<const Runtime> runtime_now;
} // namespace

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
std::shared_ptr<const Runtime> make_runtime(std::shared_ptr<const Config> config, TokenKeys tokens) {
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
    rt->scanner = std::make_shared<Scanner>(config);
    rt->config = std::move(config);
    return rt;
}

} // namespace icapm
