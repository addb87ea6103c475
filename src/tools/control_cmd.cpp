// NAME
//   control_cmd.cpp - icap-milterctl's control socket client
// SUMMARY
//   Connects (non-blocking, poll() with one deadline for the whole
//   exchange), writes the request line, half-closes, reads the reply up to
//   kMaxReply bytes, and splits off the "OK" / "ERROR reason" status line.
// DIAGNOSTICS
//   "icap-milterctl: cannot connect to PATH: reason" (exit 3), "... timed
//   out" (exit 3), "icap-milterctl: daemon: reason" (exit 1).
#include "control_cmd.hpp"

#include "icap-milter/common/unique_fd.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace icapm {

namespace {

constexpr std::size_t kMaxReply = (1u << 20) + 4096; // the server's bound and a margin
using Clock = std::chrono::steady_clock;

// wait_for - poll one fd for events until deadline; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
    while (true) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        const int rc = ::poll(&p, 1, static_cast<int>(left));
        if (rc > 0) return true;
        if (rc < 0 && errno != EINTR) return false;
    }
}

} // namespace

// is_control_command - the words that go to the daemon.
bool is_control_command(const std::string& word) {
    return word == "stats" || word == "health" || word == "queue" || word == "reload" || word == "loglevel";
}

// control_request_line - check the arguments here, so usage errors need no daemon.
std::optional<std::string> control_request_line(const std::vector<std::string>& args) {
    if (args.empty() || !is_control_command(args[0])) return std::nullopt;
    const std::string& verb = args[0];
    if (verb == "stats" || verb == "health" || verb == "queue") {
        if (args.size() == 1) return verb;
        if (args.size() == 2 && (args[1] == "--json" || args[1] == "-j")) return verb + " json";
        return std::nullopt;
    }
    if (verb == "reload") return args.size() == 1 ? std::optional<std::string>(verb) : std::nullopt;
    static const char* levels[] = {"debug", "info", "notice", "warning", "error"};
    if (args.size() == 2)
        for (const char* l : levels)
            if (args[1] == l) return "loglevel " + args[1];
    return std::nullopt;
}

// control_exchange - one request, one reply, one deadline.
std::optional<std::string> control_exchange(const std::string& path, const std::string& line,
                                            std::chrono::milliseconds timeout, std::string* error) {
    const auto deadline = Clock::now() + timeout;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
        *error = "cannot connect to '" + path + "': no usable ControlSocket path";
        return std::nullopt;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        *error = std::string("socket: ") + std::strerror(errno);
        return std::nullopt;
    }
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        // A unix socket connects at once or not at all; EAGAIN is a full backlog.
        *error = "cannot connect to " + path + ": " + std::strerror(errno);
        return std::nullopt;
    }
    const std::string request = line + "\n";
    std::size_t sent = 0;
    while (sent < request.size()) {
        if (!wait_for(fd.get(), POLLOUT, deadline)) {
            *error = "timed out sending to " + path;
            return std::nullopt;
        }
        const ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) {
            *error = "send to " + path + ": " + std::strerror(errno);
            return std::nullopt;
        }
        sent += static_cast<std::size_t>(n);
    }
    ::shutdown(fd.get(), SHUT_WR);
    std::string reply;
    char buf[65536];
    while (true) {
        if (!wait_for(fd.get(), POLLIN, deadline)) {
            *error = "timed out waiting for the reply from " + path;
            return std::nullopt;
        }
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (n < 0) {
            *error = "read from " + path + ": " + std::strerror(errno);
            return std::nullopt;
        }
        if (n == 0) break;
        reply.append(buf, static_cast<std::size_t>(n));
        if (reply.size() > kMaxReply) {
            *error = "reply from " + path + " longer than " + std::to_string(kMaxReply) + " bytes";
            return std::nullopt;
        }
    }
    return reply;
}

// control_command - usage check, exchange, status line, body.
int control_command(const std::vector<std::string>& args, const std::string& path, std::ostream& out,
                    std::ostream& err, std::chrono::milliseconds timeout) {
    const auto line = control_request_line(args);
    if (!line) {
        err << "usage: icap-milterctl [-c CONF] [-s SOCKET] stats|health|queue [--json] | reload | "
               "loglevel debug|info|notice|warning|error\n";
        return 2;
    }
    // A reload waits for the new configuration (the daemon bounds it at 30 s).
    if (timeout.count() <= 0) timeout = std::chrono::seconds(args[0] == "reload" ? 40 : 10);
    std::string error;
    auto reply = control_exchange(path, *line, timeout, &error);
    if (!reply) {
        err << "icap-milterctl: " << error << "\n";
        return 3;
    }
    if (reply->starts_with("OK\n")) {
        out << reply->substr(3);
        return 0;
    }
    if (reply->starts_with("ERROR ")) {
        std::string why = reply->substr(6);
        while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
        err << "icap-milterctl: daemon: " << why << "\n";
        return 1;
    }
    err << "icap-milterctl: unexpected reply from " << path << "\n";
    return 3;
}

} // namespace icapm
