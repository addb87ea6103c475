// NAME
//   socket.hpp - non-blocking connections with poll() deadlines
// SUMMARY
//   Connection is the transport-agnostic byte stream the ICAP session
//   talks to (plain TCP here, TLS in tls.hpp). Its primitives never
//   block: read_some / write_some report WantRead / WantWrite, and the
//   caller waits with poll() on fd() until its own deadline, which lets
//   it read and write at the same time (ICAP servers may answer early).
// DIAGNOSTICS
//   Failures are returned, never thrown: IoResult carries the errno and a
//   text; connect functions return nullptr and set *error.
#pragma once

#include "icap-milter/common/unique_fd.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace icapm {

class TlsResumption;

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

// IoStatus - outcome of one transfer attempt.
enum class IoStatus {
    Ok,        // bytes moved (IoResult::bytes > 0)
    WantRead,  // retry after the socket is readable
    WantWrite, // retry after the socket is writable
    Eof,       // orderly end of stream from the peer
    Timeout,   // the deadline passed (blocking helpers only)
    Error      // failure; see sys_errno / error
};

// IoResult - what a transfer did.
struct IoResult {
    IoStatus status = IoStatus::Ok;
    std::size_t bytes = 0;
    int sys_errno = 0;
    std::string error;
    // disconnected - the peer went away (EOF, reset, broken pipe): the
    // signature of a pooled connection the server closed while idle.
    bool disconnected() const noexcept;
};

// Connection - a connected, non-blocking byte stream.
class Connection {
public:
    virtual ~Connection() = default;
    Connection() = default;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // read_some - read what is available, without waiting.
    virtual IoResult read_some(std::span<char> out) = 0;
    // write_some - write what fits, without waiting. After WantRead or
    // WantWrite the same bytes (or more) must be offered again.
    virtual IoResult write_some(std::string_view data) = 0;
    // has_buffered_input - decrypted bytes wait inside the transport, so
    // poll() would not report them.
    virtual bool has_buffered_input() const noexcept { return false; }
    // fd - the socket to poll.
    virtual int fd() const noexcept = 0;
    // shutdown - polite close (TLS close_notify), best effort, no waiting.
    virtual void shutdown() noexcept {}
    // abort - make the coming close a reset: for a connection dropped in
    // the middle of a request, whose queued upload would otherwise keep
    // the orphaned socket (and the server) busy until it drained.
    void abort() noexcept;
    // keep_tls_session - store a resumable TLS session, if any, in slot.
    virtual void keep_tls_session(TlsResumption& slot) noexcept { (void)slot; }
    // describe - transport details for the debug log.
    virtual std::string describe() const { return "tcp"; }
};

// wait_fd - poll one descriptor for events until deadline; returns the
// revents (0 on timeout, -1 with errno on failure).
int wait_fd(int fd, short events, Deadline deadline) noexcept;

// read_until - block (with poll) until some bytes, EOF, error or deadline.
IoResult read_until(Connection& c, std::span<char> out, Deadline deadline);

// write_all - block (with poll) until all of data is written or it fails.
IoResult write_all(Connection& c, std::string_view data, Deadline deadline);

// tcp_connect - resolve host (IPv4/IPv6) and connect non-blocking to the
// first address that answers before deadline; TCP_NODELAY is set.
UniqueFd tcp_connect(const std::string& host, std::uint16_t port, Deadline deadline,
                     std::string* error);

// connect_plain - tcp_connect wrapped as a Connection.
std::unique_ptr<Connection> connect_plain(const std::string& host, std::uint16_t port,
                                          Deadline deadline, std::string* error);

// PlainConnection - a TCP socket as a Connection (owns the descriptor).
class PlainConnection final : public Connection {
public:
    explicit PlainConnection(UniqueFd fd) noexcept : fd_(std::move(fd)) {}
    IoResult read_some(std::span<char> out) override;
    IoResult write_some(std::string_view data) override;
    int fd() const noexcept override { return fd_.get(); }
    void shutdown() noexcept override;

private:
    UniqueFd fd_;
};

} // namespace icapm
