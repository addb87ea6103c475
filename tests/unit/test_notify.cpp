// NAME
//   test_notify.cpp - the systemd readiness datagram (notify.cpp)
// SUMMARY
//   A datagram socket plays the service manager: at a path and in the
//   abstract namespace, as systemd hands out both.
#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/milter/notify.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

using namespace icapm;

namespace {

// Manager - a bound datagram socket and the NOTIFY_SOCKET value naming it.
struct Manager {
    UniqueFd fd;
    std::string name;
    explicit Manager(const std::string& notify_socket) : name(notify_socket) {
        fd.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, name.data(), name.size());
        if (name[0] == '@') addr.sun_path[0] = '\0';
        REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr),
                       static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())) == 0);
        ::setenv("NOTIFY_SOCKET", name.c_str(), 1);
    }
    ~Manager() {
        ::unsetenv("NOTIFY_SOCKET");
        if (name[0] == '/') ::unlink(name.c_str());
    }
    // received - the next datagram, or "" after 2 s.
    std::string received() const {
        timeval tv{2, 0};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char buf[512];
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }
};

} // namespace

TEST_CASE("notify: READY=1 reaches a manager at a socket path") {
    auto path = std::filesystem::temp_directory_path() / ("icapm-notify-" + std::to_string(::getpid()));
    Manager m(path.string());
    CHECK(notify_service("READY=1\nSTATUS=listening"));
    CHECK(m.received() == "READY=1\nSTATUS=listening");
    CHECK(notify_service("STOPPING=1"));
    CHECK(m.received() == "STOPPING=1");
}

TEST_CASE("notify: an abstract socket (@name) works too") {
    Manager m("@icapm-notify-" + std::to_string(::getpid()));
    CHECK(notify_service("RELOADING=1"));
    CHECK(m.received() == "RELOADING=1");
}

TEST_CASE("notify: nothing is sent without a manager, or to a bad name") {
    ::unsetenv("NOTIFY_SOCKET");
    CHECK_FALSE(notify_service("READY=1"));
    ::setenv("NOTIFY_SOCKET", "relative/path", 1);
    CHECK_FALSE(notify_service("READY=1"));
    ::setenv("NOTIFY_SOCKET", "/nonexistent/icapm-notify", 1);
    CHECK_FALSE(notify_service("READY=1"));
    ::unsetenv("NOTIFY_SOCKET");
}
