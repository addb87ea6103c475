// NAME
//   control.cpp - the control socket's protocol, listener and server thread
// SUMMARY
//   One thread polls the listener, an eventfd (commands finished, or stop)
//   and every client. A client is Reading (its request line), Working (its
//   command runs on a thread of its own), then Writing (its reply); each
//   phase has a deadline, and a client past it is dropped. Nothing here
//   ever blocks on a client: sockets are non-blocking and every wait is
//   poll() with the nearest deadline.
// DIAGNOSTICS
//   Commands: debug "control: command=... peer pid=... uid=... gid=...".
//   Dropped clients: info "control: client dropped reason=...". A command
//   that throws answers "ERROR internal error: ..." and is logged at error.
#include "icap-milter/stats/control.hpp"

#include "icap-milter/common/ascii.hpp"
#include "icap-milter/log/log.hpp"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace icapm {

namespace {

using Clock = std::chrono::steady_clock;

// sys_fail - throw with errno's text.
[[noreturn]] void sys_fail(const std::string& what) { throw std::runtime_error(what + ": " + std::strerror(errno)); }

// lower_words - the line split at blanks, ASCII letters lower-cased.
std::vector<std::string> lower_words(std::string_view line) {
    std::vector<std::string> out;
    std::string word;
    for (char c : line) {
        if (c == ' ' || c == '\t') {
            if (!word.empty()) out.push_back(std::move(word));
            word.clear();
            continue;
        }
        word += ascii_lower(c);
    }
    if (!word.empty()) out.push_back(std::move(word));
    return out;
}

// unix_address - a sockaddr_un for path; throws when it does not fit.
sockaddr_un unix_address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path)
        throw std::runtime_error("control socket path '" + sanitize(path, 120) + "' is empty or too long");
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

// peer_text - "pid=N uid=N gid=N" of a unix socket's peer.
std::string peer_text(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return "pid=? uid=? gid=?";
    return "pid=" + std::to_string(cred.pid) + " uid=" + std::to_string(cred.uid) + " gid=" + std::to_string(cred.gid);
}

// Work - a running command's result, handed from its thread to the server's.
struct Work {
    std::mutex mutex;
    bool done = false;
    std::string reply;
};

// Client - one connection and where it stands.
struct Client {
    enum class Phase { Reading, Working, Writing };
    UniqueFd fd;           // closed early when a working client is dropped
    Phase phase = Phase::Reading;
    Clock::time_point deadline;
    std::string in;        // request bytes so far
    std::string out;       // reply bytes
    std::size_t sent = 0;
    std::string peer;      // for the log
    std::shared_ptr<Work> work;
    std::thread worker;
    bool finished = false; // remove at the end of this round
};

} // namespace

// parse_control_request - words, lower-cased; checked against the commands.
std::optional<ControlRequest> parse_control_request(std::string_view line, std::string* error) {
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n' || line.back() == ' ')) line.remove_suffix(1);
    for (unsigned char c : line)
        if ((c < 0x20 && c != '\t') || c >= 0x7f) {
            *error = "bad characters in request";
            return std::nullopt;
        }
    const auto w = lower_words(line);
    if (w.empty()) {
        *error = "empty request (commands: stats, health, queue [json], reload, loglevel LEVEL)";
        return std::nullopt;
    }
    ControlRequest r;
    const std::string& verb = w[0];
    if (verb == "stats" || verb == "health" || verb == "queue") {
        r.verb = verb == "stats" ? ControlRequest::Verb::Stats
                 : verb == "health" ? ControlRequest::Verb::Health
                                    : ControlRequest::Verb::Queue;
        if (w.size() == 2 && (w[1] == "json" || w[1] == "--json")) {
            r.json = true;
        } else if (w.size() != 1) {
            *error = verb + " takes no argument but json";
            return std::nullopt;
        }
        return r;
    }
    if (verb == "reload") {
        if (w.size() != 1) {
            *error = "reload takes no argument";
            return std::nullopt;
        }
        r.verb = ControlRequest::Verb::Reload;
        return r;
    }
    if (verb == "loglevel") {
        static constexpr std::string_view levels[] = {"debug", "info", "notice", "warning", "error"};
        if (w.size() != 2 || std::find(std::begin(levels), std::end(levels), w[1]) == std::end(levels)) {
            *error = "usage: loglevel debug|info|notice|warning|error";
            return std::nullopt;
        }
        r.verb = ControlRequest::Verb::LogLevel;
        r.arg = w[1];
        return r;
    }
    *error = "unknown command '" + sanitize(verb, 40) + "' (commands: stats, health, queue [json], reload, loglevel LEVEL)";
    return std::nullopt;
}

// format_reply - "OK\n" + body, or one "ERROR" line; bounded.
std::string format_reply(const ControlReply& reply, std::size_t max_bytes) {
    if (!reply.ok) {
        std::string why = reply.body.empty() ? std::string("failed") : reply.body;
        std::replace(why.begin(), why.end(), '\n', ' ');
        return "ERROR " + sanitize(why, 1000) + "\n";
    }
    std::string out = "OK\n" + reply.body;
    if (out.back() != '\n') out += '\n';
    if (out.size() > max_bytes) {
        const std::string note = "\n... reply cut at " + std::to_string(max_bytes) + " bytes\n";
        out.resize(max_bytes > note.size() ? max_bytes - note.size() : 0);
        out += note;
    }
    return out;
}

// open_control_socket - stale check, bind, mode, owner, listen.
UniqueFd open_control_socket(const std::string& path, unsigned mode, const std::string& user,
                             const std::string& group) {
    const sockaddr_un addr = unix_address(path);
    struct stat st{};
    if (lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) throw std::runtime_error("control socket " + path + " exists and is not a socket");
        UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!probe) sys_fail("socket");
        if (connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 || errno == EAGAIN)
            throw std::runtime_error("control socket " + path + " is in use by a running daemon");
        if (unlink(path.c_str()) != 0) sys_fail("remove stale control socket " + path);
        spdlog::info("control: removed stale socket {}", path);
    }
    UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) sys_fail("socket");
    if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) sys_fail("bind " + path);
    if (chmod(path.c_str(), mode) != 0) sys_fail("chmod " + path);
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    if (!user.empty()) {
        const passwd* pw = getpwnam(user.c_str());
        if (!pw) throw std::runtime_error("unknown User " + user);
        uid = pw->pw_uid;
        gid = pw->pw_gid;
    }
    if (!group.empty()) {
        const struct group* gr = getgrnam(group.c_str());
        if (!gr) throw std::runtime_error("unknown ControlSocketGroup " + group);
        gid = gr->gr_gid;
    }
    if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) && chown(path.c_str(), uid, gid) != 0)
        sys_fail("chown " + path);
    if (listen(fd.get(), 16) != 0) sys_fail("listen " + path);
    return fd;
}

struct ControlServer::Impl {
    UniqueFd listener;
    std::string path;
    ControlHandler handler;
    ControlLimits limits;
    UniqueFd wake; // eventfd: a command finished, or stop
    std::atomic<bool> stopping{false};
    std::vector<std::unique_ptr<Client>> clients;
    Clock::time_point accept_pause{}; // no accept() before this (after EMFILE and the like)
    std::thread thread;

    // signal - wake the poll loop.
    void signal() const noexcept {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake.get(), &one, sizeof one);
    }

    // drop - end a client early (its command thread, if any, is joined later).
    void drop(Client& c, const char* reason) {
        spdlog::info("control: client dropped reason={} {}", reason, c.peer);
        c.fd.reset();
        if (c.phase != Client::Phase::Working)
            c.finished = true;
        else
            c.deadline = Clock::now() + std::chrono::hours(24); // no deadline left to wake for: wait for its thread
    }

    // reply_now - answer without running a command (parse error, busy, too long).
    void reply_now(Client& c, const ControlReply& r) {
        c.out = format_reply(r, limits.max_reply);
        c.sent = 0;
        c.phase = Client::Phase::Writing;
        c.deadline = Clock::now() + limits.io_timeout;
    }

    // start - run the request line's command on a thread of its own.
    void start(Client& c, std::string_view line) {
        std::string why;
        auto req = parse_control_request(line, &why);
        spdlog::debug("control: command=\"{}\" {}", sanitize(line, 80), c.peer);
        if (!req) {
            reply_now(c, {false, why});
            return;
        }
        const auto running = std::count_if(clients.begin(), clients.end(),
                                           [](const auto& o) { return o->phase == Client::Phase::Working; });
        if (static_cast<std::size_t>(running) >= limits.max_commands) {
            spdlog::info("control: {} commands running already; busy for {}", running, c.peer);
            reply_now(c, {false, "busy, try again"});
            return;
        }
        auto work = std::make_shared<Work>();
        try {
            c.worker = std::thread([this, work, r = *req] {
                ControlReply reply;
                try {
                    reply = handler(r);
                } catch (const std::exception& e) {
                    spdlog::error("control: command failed: {}", sanitize(e.what(), 300));
                    reply = {false, std::string("internal error: ") + e.what()};
                } catch (...) {
                    reply = {false, "internal error"};
                }
                std::string bytes = format_reply(reply, limits.max_reply);
                {
                    std::lock_guard lock(work->mutex);
                    work->reply = std::move(bytes);
                    work->done = true;
                }
                signal();
            });
        } catch (const std::exception& e) {
            reply_now(c, {false, std::string("cannot start command: ") + e.what()});
            return;
        }
        c.work = std::move(work);
        c.phase = Client::Phase::Working;
        c.deadline = Clock::now() + limits.command_timeout;
    }

    // read_some - take what the client sent; start its command at the line end.
    void read_some(Client& c) {
        char buf[2048];
        const std::size_t room = limits.max_request + 1 - c.in.size(); // one byte more shows "too long"
        const ssize_t n = ::recv(c.fd.get(), buf, std::min(room, sizeof buf), MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) drop(c, "read error");
            return;
        }
        if (n == 0) { // end of file: what came is the request, if anything did
            if (c.in.empty()) {
                c.fd.reset();
                c.finished = true;
            } else {
                start(c, c.in);
            }
            return;
        }
        c.in.append(buf, static_cast<std::size_t>(n));
        if (auto nl = c.in.find('\n'); nl != std::string::npos && nl < limits.max_request) {
            start(c, std::string_view(c.in).substr(0, nl));
        } else if (c.in.size() > limits.max_request) {
            spdlog::info("control: request longer than {} bytes {}", limits.max_request, c.peer);
            reply_now(c, {false, "request too long"});
        }
    }

    // write_some - send what the socket takes; done when all is sent.
    void write_some(Client& c) {
        while (c.sent < c.out.size()) {
            const ssize_t n = ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
                drop(c, "write error");
                return;
            }
            c.sent += static_cast<std::size_t>(n);
        }
        // Closing with unread input would reset the connection, and the
        // client could lose the reply: end our side, take what is there.
        ::shutdown(c.fd.get(), SHUT_WR);
        char sink[4096];
        for (int i = 0; i < 16 && ::recv(c.fd.get(), sink, sizeof sink, MSG_DONTWAIT) > 0; ++i) {
        }
        c.fd.reset();
        c.finished = true;
    }

    // accept_all - take waiting connections; over the limit they are closed at once.
    void accept_all() {
        for (int i = 0; i < 64; ++i) {
            UniqueFd fd(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!fd) {
                // Out of descriptors or memory: the listener stays readable,
                // so leave it alone for a moment rather than spin on it.
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED) {
                    spdlog::warn("control: accept: {}", std::strerror(errno));
                    accept_pause = Clock::now() + std::chrono::milliseconds(200);
                }
                return;
            }
            auto c = std::make_unique<Client>();
            c->peer = "peer " + peer_text(fd.get());
            c->fd = std::move(fd);
            c->deadline = Clock::now() + limits.io_timeout;
            if (clients.size() >= limits.max_clients) {
                spdlog::info("control: {} clients already; closing {}", clients.size(), c->peer);
                continue;
            }
            clients.push_back(std::move(c));
        }
    }

    // collect - clients whose command finished move on to Writing (or go).
    void collect() {
        for (auto& cp : clients) {
            Client& c = *cp;
            if (c.phase != Client::Phase::Working || !c.work) continue;
            std::string reply;
            {
                std::lock_guard lock(c.work->mutex);
                if (!c.work->done) continue;
                reply = std::move(c.work->reply);
            }
            c.worker.join();
            c.work.reset();
            if (!c.fd) {
                c.finished = true; // dropped while its command ran
                continue;
            }
            c.out = std::move(reply);
            c.sent = 0;
            c.phase = Client::Phase::Writing;
            c.deadline = Clock::now() + limits.io_timeout;
            write_some(c);
        }
    }

    // run - the poll loop, until stopping.
    void run() {
        std::vector<pollfd> fds;
        std::vector<Client*> who;
        while (!stopping) {
            fds.clear();
            who.clear();
            fds.push_back({wake.get(), POLLIN, 0});
            const bool accepting = Clock::now() >= accept_pause;
            fds.push_back({listener.get(), static_cast<short>(accepting ? POLLIN : 0), 0});
            auto next = std::min(Clock::now() + std::chrono::seconds(1),
                                 accepting ? Clock::time_point::max() : accept_pause);
            for (auto& cp : clients) {
                Client& c = *cp;
                next = std::min(next, c.deadline);
                if (!c.fd || c.phase == Client::Phase::Working) continue;
                fds.push_back({c.fd.get(), static_cast<short>(c.phase == Client::Phase::Reading ? POLLIN : POLLOUT), 0});
                who.push_back(&c);
            }
            const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now()).count();
            const int rc = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<long long>(wait + 1, 0, 1000)));
            if (rc < 0 && errno != EINTR) {
                spdlog::error("control: poll: {}", std::strerror(errno));
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                continue;
            }
            if (rc > 0) {
                if (fds[0].revents) {
                    std::uint64_t v;
                    [[maybe_unused]] auto n = ::read(wake.get(), &v, sizeof v);
                }
                for (std::size_t i = 2; i < fds.size(); ++i) {
                    if (!fds[i].revents) continue;
                    Client& c = *who[i - 2];
                    if (c.phase == Client::Phase::Reading)
                        read_some(c);
                    else if (c.phase == Client::Phase::Writing)
                        write_some(c);
                }
                if (fds[1].revents) accept_all();
            }
            collect();
            const auto now = Clock::now();
            for (auto& cp : clients) {
                Client& c = *cp;
                if (c.finished || now < c.deadline) continue;
                if (c.phase == Client::Phase::Working && !c.fd) continue; // already dropped; waits for its thread
                drop(c, c.phase == Client::Phase::Reading   ? "timeout reading the request"
                        : c.phase == Client::Phase::Working ? "command still running"
                                                            : "timeout writing the reply");
            }
            std::erase_if(clients, [](const std::unique_ptr<Client>& c) { return c->finished; });
        }
        for (auto& cp : clients)
            if (cp->worker.joinable()) cp->worker.join(); // commands are bounded themselves
        clients.clear();
    }
};

// ControlServer - start the thread.
ControlServer::ControlServer(UniqueFd listener, std::string path, ControlHandler handler, ControlLimits limits)
    : impl_(std::make_unique<Impl>()) {
    impl_->listener = std::move(listener);
    impl_->path = std::move(path);
    impl_->handler = std::move(handler);
    impl_->limits = limits;
    impl_->wake = UniqueFd(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!impl_->wake) sys_fail("eventfd");
    impl_->thread = std::thread([this] { impl_->run(); });
}

// ~ControlServer - stop the thread, close the listener, remove the socket file.
ControlServer::~ControlServer() {
    impl_->stopping = true;
    impl_->signal();
    impl_->thread.join();
    impl_->listener.reset();
    if (!impl_->path.empty() && ::unlink(impl_->path.c_str()) != 0 && errno != ENOENT)
        spdlog::warn("control: cannot remove {}: {}", impl_->path, std::strerror(errno));
}

} // namespace icapm
