// NAME
//   notify.cpp - the sd_notify(3) datagram, without libsystemd
// SUMMARY
//   A fresh datagram socket per message: the daemon sends a handful in
//   its life (ready, each reload, stopping), so there is nothing to keep.
#include "icap-milter/milter/notify.hpp"
#include "icap-milter/common/unique_fd.hpp"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>

namespace icapm {

bool notify_service(std::string_view state) noexcept {
    const char* target = std::getenv("NOTIFY_SOCKET");
    if (!target || !*target) return false;
    static std::atomic<bool> warned{false};
    auto warn = [&](const char* what) {
        const int err = errno;
        try {
            if (!warned.exchange(true)) spdlog::warn("systemd notify: {}: {}", what, std::strerror(err));
        } catch (...) {
        }
        return false;
    };
    const std::size_t len = std::strlen(target);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    // Absolute paths and abstract names ("@name") only, as systemd gives.
    if ((target[0] != '/' && target[0] != '@') || len >= sizeof(addr.sun_path)) {
        errno = EINVAL;
        return warn("NOTIFY_SOCKET is not a socket path");
    }
    std::memcpy(addr.sun_path, target, len);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
    const auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!fd) return warn("socket");
    if (::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                 addr_len) != static_cast<ssize_t>(state.size()))
        return warn("sendto");
    return true;
}

} // namespace icapm
