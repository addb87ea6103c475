// NAME
//   pump.hpp - one ICAP request/response over a connection, full duplex
// SUMMARY
//   A Pump writes a request while it watches for input, because an ICAP
//   server may answer before the upload ends (c-icap does), and reads a
//   reply until the parser needs no more bytes. Every wait is bounded:
//   each read or write wait and a reply's header part by Timeouts::io,
//   and everything by the call's overall deadline.
// DIAGNOSTICS
//   Nothing throws: send() and receive() return Step::Failed and keep the
//   first reason in error(); disconnected() says whether the peer went
//   away (EOF, reset), which the session uses to tell a stale pooled
//   connection from a failed exchange.
#pragma once

#include "icap-milter/icap/response.hpp"
#include "icap-milter/net/socket.hpp"
#include "icap-milter/scan/session.hpp"

#include <poll.h>

#include <atomic>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

class Pump {
public:
    enum class Step { Sent, Reply, Failed };

    // Pump - drive c and p with the session's timeouts until overall;
    // rbuf is the session's read buffer.
    // cancel, when set, is looked at every kCancelSlice while waiting: the
    // exchange then fails at once ("cancelled"), so a stopping daemon does
    // not wait for a scanner's reply.
    Pump(Connection& c, ResponseParser& p, const Timeouts& t, Deadline overall, std::vector<char>& rbuf,
         const std::atomic<bool>* cancel = nullptr)
        : c_(c), p_(p), t_(t), overall_(overall), rbuf_(rbuf), cancel_(cancel) {}

    // send - write all of data; Reply if the server answered first.
    Step send(std::string_view data);
    // receive - read until the parser stops needing bytes.
    Step receive();

    bool auto_continue = true;   // resume() after a 100 nobody waits for
    const std::string& error() const noexcept { return error_; }
    bool disconnected() const noexcept { return disconnected_; }
    bool peer_closed() const noexcept { return peer_closed_; }

private:
    // deadline - the nearest of: one io wait, the reply's header part, the call.
    Deadline deadline();
    // wait - poll for events until deadline() or cancellation; the revents,
    // 0 when the time is up or the exchange was cancelled, -1 on failure.
    int wait(short events);
    // do_read - one non-blocking read fed to the parser; false on failure.
    bool do_read();
    // failure - record why the exchange failed.
    Step failure(std::string why, bool disconnected);
    // timeout - a deadline passed.
    Step timeout(const char* doing);

    Connection& c_;
    ResponseParser& p_;
    const Timeouts& t_;
    Deadline overall_;
    std::vector<char>& rbuf_;
    const std::atomic<bool>* cancel_;
    bool cancelled_ = false;
    short read_events_ = POLLIN;
    bool write_wants_read_ = false;
    std::optional<Deadline> header_start_;
    std::string error_;
    bool disconnected_ = false;
    bool peer_closed_ = false;
};

} // namespace icapm
