// NAME
//   pump.cpp - one ICAP request/response over a connection, full duplex
// SUMMARY
//   While sending, poll() waits for both directions: input is fed to the
//   response parser at once, so an early final reply stops the upload.
//   TLS may want a read to finish a write (or the reverse); both are
//   followed. A write that fails may still leave a complete reply to read.
// DIAGNOSTICS
//   See pump.hpp: failures are returned with a reason, never thrown.
#include "icap-milter/scan/pump.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace icapm {

// send - write all of data; Reply if the server answered first.
Pump::Step Pump::send(std::string_view data) {
    std::size_t pos = 0;
    while (pos < data.size()) {
        if (p_.state() != ResponseParser::State::NeedMore) return Step::Reply;
        if (c_.has_buffered_input()) {
            if (!do_read()) return Step::Failed;
            continue;
        }
        short ev = static_cast<short>(read_events_ | (write_wants_read_ ? POLLIN : POLLOUT));
        int rev = wait(ev);
        if (rev == 0) return timeout("sending the request");
        if (rev < 0) return failure(fmt::format("poll: {}", std::strerror(errno)), false);
        if (rev & (POLLIN | POLLHUP | POLLERR)) {
            if (!do_read()) return Step::Failed;
            if (p_.state() != ResponseParser::State::NeedMore) continue;
        }
        if ((rev & (POLLOUT | POLLERR | POLLHUP)) || (write_wants_read_ && (rev & POLLIN))) {
            IoResult w = c_.write_some(data.substr(pos));
            write_wants_read_ = false;
            if (w.status == IoStatus::Ok) {
                pos += w.bytes;
            } else if (w.status == IoStatus::WantRead) {
                write_wants_read_ = true;
            } else if (w.status != IoStatus::WantWrite) {
                // The server may have answered and closed: read what it said.
                Step s = receive();
                if (s == Step::Reply) return s;
                error_ = w.error.empty() ? "connection closed while sending" : w.error;
                disconnected_ = w.disconnected() || disconnected_;
                return Step::Failed;
            }
        }
    }
    return Step::Sent;
}

// receive - read until the parser stops needing bytes.
Pump::Step Pump::receive() {
    while (p_.state() == ResponseParser::State::NeedMore) {
        if (!c_.has_buffered_input()) {
            int rev = wait(read_events_);
            if (rev == 0) return timeout("waiting for the reply");
            if (rev < 0) return failure(fmt::format("poll: {}", std::strerror(errno)), false);
        }
        if (!do_read()) return Step::Failed;
    }
    return Step::Reply;
}

// deadline - the nearest of: one io wait, the reply's header part, the call.
Deadline Pump::deadline() {
    auto now = SteadyClock::now();
    Deadline d = std::min(now + t_.io, overall_);
    if (p_.in_headers()) {
        if (!header_start_) header_start_ = now;
        d = std::min(d, *header_start_ + t_.io);
    } else {
        header_start_.reset();
    }
    return d;
}

// do_read - one non-blocking read fed to the parser; false on failure.
bool Pump::do_read() {
    IoResult r = c_.read_some(std::span<char>(rbuf_.data(), rbuf_.size()));
    switch (r.status) {
    case IoStatus::Ok:
        p_.feed(std::string_view(rbuf_.data(), r.bytes));
        while (p_.state() == ResponseParser::State::Continue && auto_continue) p_.resume();
        if (p_.state() == ResponseParser::State::Error) {
            failure("ICAP protocol error: " + p_.error(), false);
            return false;
        }
        return true;
    case IoStatus::WantRead: read_events_ = POLLIN; return true;
    case IoStatus::WantWrite: read_events_ = POLLOUT; return true;
    case IoStatus::Eof:
        peer_closed_ = true;
        read_events_ = POLLIN;
        if (p_.state() != ResponseParser::State::NeedMore) return true;
        failure(p_.bytes_seen() == 0 ? "connection closed before any reply"
                                     : "connection closed in the middle of the reply",
                true);
        return false;
    default:
        failure(r.error, r.disconnected());
        return false;
    }
}

// failure - record why the exchange failed.
Pump::Step Pump::failure(std::string why, bool disconnected) {
    if (error_.empty()) error_ = std::move(why);
    disconnected_ = disconnected_ || disconnected;
    return Step::Failed;
}

// wait - poll in slices when the exchange can be cancelled. The deadline
// is taken once: re-taking it per slice would restart the io timeout.
int Pump::wait(short events) {
    constexpr std::chrono::milliseconds kCancelSlice{200};
    const Deadline until = deadline();
    if (!cancel_) return wait_fd(c_.fd(), events, until);
    while (true) {
        const int rev = wait_fd(c_.fd(), events, std::min(until, SteadyClock::now() + kCancelSlice));
        if (rev != 0) return rev;
        if (cancel_->load()) {
            cancelled_ = true;
            return 0;
        }
        if (SteadyClock::now() >= until) return 0;
    }
}

// timeout - a deadline passed, or the exchange was cancelled.
Pump::Step Pump::timeout(const char* doing) {
    if (cancelled_) return failure(fmt::format("cancelled {} (stopping)", doing), false);
    bool total = SteadyClock::now() >= overall_;
    return failure(fmt::format("timed out {}{}", doing, total ? " (total time limit)" : ""), false);
}

} // namespace icapm
