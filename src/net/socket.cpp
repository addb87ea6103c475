// NAME
//   socket.cpp - TCP connect and plain transfers with poll() deadlines
// SUMMARY
//   Sockets are created non-blocking and close-on-exec. connect() runs
//   against every address getaddrinfo() returns (IPv4 and IPv6) until one
//   succeeds or the deadline passes. TCP_NODELAY is set because ICAP
//   exchanges are small request/response turns that Nagle would delay.
//   Writes use MSG_NOSIGNAL so a closed peer is an EPIPE, not a SIGPIPE.
// DIAGNOSTICS
//   Errors carry "host:port: what: strerror" texts for the log.
#include "icap-milter/net/socket.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

namespace icapm {

namespace {

// ms_until - milliseconds left before deadline, for poll() (0 when past).
int ms_until(Deadline deadline) noexcept {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
    if (left <= 0) return 0;
    return left > 1000000000 ? 1000000000 : static_cast<int>(left);
}

// errno_result - an Error IoResult for errno e.
IoResult errno_result(int e, const char* what) {
    IoResult r;
    r.status = IoStatus::Error;
    r.sys_errno = e;
    r.error = fmt::format("{}: {}", what, std::strerror(e));
    return r;
}

// AddrInfoFree - release a getaddrinfo() list.
struct AddrInfoFree {
    void operator()(addrinfo* p) const noexcept { freeaddrinfo(p); }
};

} // namespace

// disconnected - EOF or a reset / broken pipe.
bool IoResult::disconnected() const noexcept {
    return status == IoStatus::Eof ||
           (status == IoStatus::Error &&
            (sys_errno == ECONNRESET || sys_errno == EPIPE || sys_errno == ECONNABORTED));
}

// wait_fd - poll() with a deadline, restarted after signals.
int wait_fd(int fd, short events, Deadline deadline) noexcept {
    while (true) {
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, ms_until(deadline));
        if (n > 0) return p.revents;
        if (n == 0) {
            if (SteadyClock::now() >= deadline) return 0;
            continue; // poll rounds to ms; wait out the remainder
        }
        if (errno != EINTR) return -1;
    }
}

// read_until - one read that may wait.
IoResult read_until(Connection& c, std::span<char> out, Deadline deadline) {
    short events = POLLIN;
    while (true) {
        if (!c.has_buffered_input()) {
            int rev = wait_fd(c.fd(), events, deadline);
            if (rev == 0) return IoResult{IoStatus::Timeout, 0, ETIMEDOUT, "read timed out"};
            if (rev < 0) return errno_result(errno, "poll");
        }
        IoResult r = c.read_some(out);
        if (r.status == IoStatus::WantRead)
            events = POLLIN;
        else if (r.status == IoStatus::WantWrite)
            events = POLLOUT;
        else
            return r;
    }
}

// write_all - every byte of data, or the first failure.
IoResult write_all(Connection& c, std::string_view data, Deadline deadline) {
    std::size_t done = 0;
    short events = POLLOUT;
    while (done < data.size()) {
        IoResult r = c.write_some(data.substr(done));
        if (r.status == IoStatus::Ok) {
            done += r.bytes;
            events = POLLOUT;
            continue;
        }
        if (r.status == IoStatus::WantRead)
            events = POLLIN;
        else if (r.status == IoStatus::WantWrite)
            events = POLLOUT;
        else
            return r;
        int rev = wait_fd(c.fd(), events, deadline);
        if (rev == 0) return IoResult{IoStatus::Timeout, done, ETIMEDOUT, "write timed out"};
        if (rev < 0) return errno_result(errno, "poll");
    }
    return IoResult{IoStatus::Ok, done, 0, {}};
}

// tcp_connect - non-blocking connect over the resolved addresses.
UniqueFd tcp_connect(const std::string& host, std::uint16_t port, Deadline deadline,
                     std::string* error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* raw = nullptr;
    const std::string service = std::to_string(port);
    // getaddrinfo cannot be bounded by poll(); resolvers have their own
    // timeouts, and names are usually in /etc/hosts or literals.
    int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &raw);
    if (rc != 0) {
        *error = fmt::format("{}:{}: cannot resolve: {}", host, port,
                             rc == EAI_SYSTEM ? std::strerror(errno) : gai_strerror(rc));
        return UniqueFd{};
    }
    std::unique_ptr<addrinfo, AddrInfoFree> list(raw);
    std::string last = "no address";
    for (addrinfo* ai = list.get(); ai; ai = ai->ai_next) {
        if (SteadyClock::now() >= deadline) {
            last = "connect timed out";
            break;
        }
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                             ai->ai_protocol));
        if (!fd) {
            last = fmt::format("socket: {}", std::strerror(errno));
            continue;
        }
        int one = 1;
        // Failure only costs latency; the connection still works.
        (void)::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) == 0) return fd;
        if (errno != EINPROGRESS && errno != EINTR) {
            last = fmt::format("connect: {}", std::strerror(errno));
            continue;
        }
        int rev = wait_fd(fd.get(), POLLOUT, deadline);
        if (rev == 0) {
            last = "connect timed out";
            break;
        }
        if (rev < 0) {
            last = fmt::format("poll: {}", std::strerror(errno));
            continue;
        }
        int soerr = 0;
        socklen_t len = sizeof soerr;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
        if (soerr == 0) return fd;
        last = fmt::format("connect: {}", std::strerror(soerr));
    }
    *error = fmt::format("{}:{}: {}", host, port, last);
    return UniqueFd{};
}

// connect_plain - a PlainConnection, or nullptr with *error.
std::unique_ptr<Connection> connect_plain(const std::string& host, std::uint16_t port,
                                          Deadline deadline, std::string* error) {
    UniqueFd fd = tcp_connect(host, port, deadline, error);
    if (!fd) return nullptr;
    return std::make_unique<PlainConnection>(std::move(fd));
}

// read_some - recv() without waiting.
IoResult PlainConnection::read_some(std::span<char> out) {
    while (true) {
        ssize_t n = ::recv(fd_.get(), out.data(), out.size(), 0);
        if (n > 0) return IoResult{IoStatus::Ok, static_cast<std::size_t>(n), 0, {}};
        if (n == 0) return IoResult{IoStatus::Eof, 0, 0, "connection closed by peer"};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{IoStatus::WantRead, 0, 0, {}};
        return errno_result(errno, "recv");
    }
}

// write_some - send() without waiting or SIGPIPE.
IoResult PlainConnection::write_some(std::string_view data) {
    while (true) {
        ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) return IoResult{IoStatus::Ok, static_cast<std::size_t>(n), 0, {}};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return IoResult{IoStatus::WantWrite, 0, 0, {}};
        return errno_result(errno, "send");
    }
}

// abort - SO_LINGER with zero time: close() sends RST and drops queued data.
void Connection::abort() noexcept {
    linger l{1, 0};
    (void)::setsockopt(fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

// shutdown - send FIN; the descriptor is closed by its owner.
void PlainConnection::shutdown() noexcept { (void)::shutdown(fd_.get(), SHUT_RDWR); }

} // namespace icapm
