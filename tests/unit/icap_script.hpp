// NAME
//   icap_script.hpp - a scripted ICAP server for unit tests
// SUMMARY
//   ScriptServer accepts on 127.0.0.1 (port 0) and runs a handler per
//   connection; Peer reads requests and plays replies, resets or
//   silence. Shared by the session and pool tests.
#pragma once

#include "icap-milter/common/byte_source.hpp"
#include "icap-milter/net/uri.hpp"
#include "icap-milter/scan/session.hpp"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace icapm_test {

using namespace icapm;
using namespace std::chrono_literals;

// QuietLog - keep expected warnings out of the test output.
struct QuietLog {
    spdlog::level::level_enum old = spdlog::get_level();
    QuietLog() { spdlog::set_level(spdlog::level::critical); }
    ~QuietLog() { spdlog::set_level(old); }
};

// MemSource - a ByteSource over a string.
class MemSource : public ByteSource {
public:
    explicit MemSource(std::string d) : d_(std::move(d)) {}
    std::size_t read(std::span<char> out) override {
        std::size_t n = std::min(out.size(), d_.size() - pos_);
        std::memcpy(out.data(), d_.data() + pos_, n);
        pos_ += n;
        return n;
    }
    void rewind() override {
        pos_ = 0;
        ++rewinds;
    }
    std::uint64_t size() const override { return d_.size(); }
    int rewinds = 0;

private:
    std::string d_;
    std::size_t pos_ = 0;
};

// Request - what the server read of one ICAP request.
struct Request {
    std::string head;        // ICAP header block
    std::string encap;       // encapsulated HTTP headers
    std::string body;        // decoded chunks (preview and rest)
    std::string preview_body;
    bool ieof = false;
    std::string method() const { return head.substr(0, head.find(' ')); }
    // header - value of an ICAP header, "" when absent.
    std::string header(const std::string& name) const {
        auto p = head.find("\r\n" + name + ": ");
        if (p == std::string::npos) return "";
        p += name.size() + 4;
        return head.substr(p, head.find("\r\n", p) - p);
    }
};

// Peer - the server side of one connection (blocking, with a 5 s receive timeout).
class Peer {
public:
    explicit Peer(int fd) : fd_(fd) {}
    ~Peer() {
        if (fd_ >= 0) ::close(fd_);
    }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    // fill - one recv into the buffer.
    bool fill() {
        char tmp[65536];
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n <= 0) return false;
        buf_.append(tmp, static_cast<std::size_t>(n));
        return true;
    }
    // read_until - bytes up to and including delim.
    bool read_until(std::string_view delim, std::string* out) {
        std::size_t p;
        while ((p = buf_.find(delim)) == std::string::npos)
            if (buf_.size() > (1 << 20) || !fill()) return false;
        *out = buf_.substr(0, p + delim.size());
        buf_.erase(0, p + delim.size());
        return true;
    }
    // read_exact - n bytes.
    bool read_exact(std::size_t n, std::string* out) {
        while (buf_.size() < n)
            if (!fill()) return false;
        *out = buf_.substr(0, n);
        buf_.erase(0, n);
        return true;
    }
    // read_chunks - chunks until the last one; notes "ieof".
    bool read_chunks(std::string* body, bool* ieof) {
        while (true) {
            std::string line;
            if (!read_until("\r\n", &line)) return false;
            std::size_t size = std::stoul(line, nullptr, 16);
            if (size == 0) {
                *ieof = line.find("ieof") != std::string::npos;
                return read_until("\r\n", &line) && line == "\r\n";
            }
            std::string data;
            if (!read_exact(size + 2, &data)) return false;
            body->append(data, 0, size);
        }
    }
    // read_head - the ICAP header block and the encapsulated headers.
    bool read_head(Request* r) {
        if (!read_until("\r\n\r\n", &r->head)) return false;
        std::string enc = r->header("Encapsulated");
        auto p = enc.find("res-body=");
        if (p == std::string::npos) return true;
        return read_exact(std::stoul(enc.substr(p + 9)), &r->encap);
    }
    // read_request - a whole request; a preview is answered with 100 Continue.
    bool read_request(Request* r, bool send_continue = true) {
        if (!read_head(r)) return false;
        if (r->encap.empty()) return true;
        if (!read_chunks(&r->body, &r->ieof)) return false;
        if (!r->header("Preview").empty()) {
            r->preview_body = r->body;
            if (!r->ieof && send_continue) {
                send("ICAP/1.0 100 Continue\r\n\r\n");
                bool dummy;
                return read_chunks(&r->body, &dummy);
            }
        }
        return true;
    }
    // send - all of s (false when the client is gone).
    bool send(std::string_view s) {
        while (!s.empty()) {
            ssize_t n = ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            s.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }
    // reset - abort with a TCP RST.
    void reset() {
        linger l{1, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd_);
        fd_ = -1;
    }
    // close - orderly close.
    void close() {
        ::close(fd_);
        fd_ = -1;
    }
    // wait_client_gone - until the client closes or sends more, up to limit,
    // without reading; true when something arrived or the peer went away.
    bool wait_activity(std::chrono::milliseconds limit) {
        if (!buf_.empty()) return true;
        pollfd p{fd_, POLLIN | POLLRDHUP, 0};
        return ::poll(&p, 1, static_cast<int>(limit.count())) > 0;
    }
    // wait_peer_close - until the client closes (FIN), without reading, so
    // unread data stays queued and the client cannot write any more.
    bool wait_peer_close(std::chrono::milliseconds limit) {
        pollfd p{fd_, POLLRDHUP, 0};
        return ::poll(&p, 1, static_cast<int>(limit.count())) > 0 && (p.revents & (POLLRDHUP | POLLHUP));
    }
    // drain - read and discard until EOF.
    void drain() {
        while (fill()) buf_.clear();
    }
    int fd() const { return fd_; }

private:
    int fd_;
    std::string buf_;
};

// ScriptServer - accepts on 127.0.0.1:0 and runs handler per connection.
class ScriptServer {
public:
    using Handler = std::function<void(Peer&, int index)>;
    explicit ScriptServer(Handler h) : handler_(std::move(h)) {
        lfd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(lfd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(lfd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(lfd_, 16) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(lfd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        acceptor_ = std::thread([this] { accept_loop(); });
    }
    ~ScriptServer() {
        stop_ = true;
        acceptor_.join();
        for (auto& t : workers_) t.join();
        ::close(lfd_);
    }
    std::uint16_t port() const { return port_; }
    int connections() const { return connections_; }
    IcapUri uri() const {
        IcapUri u;
        u.host = "127.0.0.1";
        u.port = port_;
        u.service = "avscan";
        return u;
    }

private:
    void accept_loop() {
        while (!stop_) {
            pollfd p{lfd_, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) continue;
            timeval tv{5, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            int index = connections_++;
            workers_.emplace_back([this, fd, index] {
                Peer peer(fd);
                handler_(peer, index);
            });
        }
    }

    Handler handler_;
    int lfd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<int> connections_{0};
    std::thread acceptor_;
    std::vector<std::thread> workers_;
};

// options_reply - an OPTIONS answer.
inline std::string options_reply(std::optional<int> preview = std::nullopt, std::optional<int> ttl = std::nullopt,
                          const char* methods = "RESPMOD, REQMOD") {
    std::string s = "ICAP/1.0 200 OK\r\nMethods: " + std::string(methods) +
                    "\r\nService: scripted\r\nISTag: \"SCRIPT-1\"\r\nAllow: 204\r\n";
    if (preview) s += "Preview: " + std::to_string(*preview) + "\r\n";
    if (ttl) s += "Options-TTL: " + std::to_string(*ttl) + "\r\n";
    return s + "Encapsulated: null-body=0\r\n\r\n";
}

inline const std::string kReply204 = "ICAP/1.0 204 No Content\r\nISTag: \"SCRIPT-1\"\r\n\r\n";

// infected_reply - a c-icap style infection answer with a block page.
inline std::string infected_reply(const std::string& threat) {
    const std::string http = "HTTP/1.1 403 Forbidden\r\nContent-Type: text/html\r\n\r\n";
    const std::string page = "<html>virus " + threat + "</html>";
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", page.size());
    return "ICAP/1.0 200 OK\r\nISTag: \"SCRIPT-1\"\r\nX-Infection-Found: Type=0; Resolution=2; Threat=" + threat +
           ";\r\nEncapsulated: res-hdr=0, res-body=" + std::to_string(http.size()) + "\r\n\r\n" + http + size +
           page + "\r\n0\r\n\r\n";
}

// echo_reply - a 200 carrying body back.
inline std::string echo_reply(const std::string& body) {
    const std::string http = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    std::string s = "ICAP/1.0 200 OK\r\nISTag: \"SCRIPT-1\"\r\nEncapsulated: res-hdr=0, res-body=" +
                    std::to_string(http.size()) + "\r\n\r\n" + http;
    if (!body.empty()) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", body.size());
        s += size + body + "\r\n";
    }
    return s + "0\r\n\r\n";
}

// Recorder - requests seen by a standard server, shared with the test.
struct Recorder {
    std::mutex mu;
    std::vector<Request> requests;
    std::atomic<int> options{0};
    std::atomic<int> respmods{0};
    void add(const Request& r) {
        std::lock_guard<std::mutex> lock(mu);
        requests.push_back(r);
    }
    Request last() {
        std::lock_guard<std::mutex> lock(mu);
        REQUIRE(!requests.empty());
        return requests.back();
    }
};

// serve - a well-behaved server: OPTIONS from opts, RESPMOD from respond.
inline void serve(Peer& peer, Recorder& rec, const std::string& opts,
           const std::function<std::string(const Request&)>& respond) {
    while (true) {
        Request r;
        if (!peer.read_request(&r)) return;
        rec.add(r);
        if (r.method() == "OPTIONS") {
            ++rec.options;
            if (!peer.send(opts)) return;
        } else {
            ++rec.respmods;
            if (!peer.send(respond(r))) return;
        }
    }
}

// serve_heads - a misbehaving server's frame: OPTIONS are answered with
// options_reply(); each RESPMOD's head goes to on_respmod, which reads
// what it wants and answers (or not). Ends when the client leaves or
// on_respmod returns false.
inline void serve_heads(Peer& peer, const std::function<bool(Peer&, const Request&)>& on_respmod) {
    Request r;
    while (peer.read_head(&r)) {
        if (r.method() == "OPTIONS") {
            if (!peer.send(options_reply())) return;
            continue;
        }
        if (!on_respmod(peer, r)) return;
    }
}

// fast - short timeouts for tests that expect failures.
inline Timeouts fast(std::chrono::milliseconds io = 2000ms) {
    Timeouts t;
    t.connect = 2000ms;
    t.io = io;
    return t;
}

// random_bytes - deterministic binary test data.
inline std::string random_bytes(std::size_t n, unsigned seed = 1) {
    std::string s(n, '\0');
    for (auto& c : s) {
        seed = seed * 1103515245u + 12345u;
        c = static_cast<char>(seed >> 16);
    }
    return s;
}

} // namespace icapm_test
