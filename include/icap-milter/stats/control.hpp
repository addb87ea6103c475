// NAME
//   control.hpp - the control socket: its line protocol and its server
// SUMMARY
//   icap-milterctl talks to the running daemon over a unix socket
//   (ControlSocket): one command line per connection, one reply, then the
//   daemon closes. Commands: "stats", "health", "queue" (each optionally
//   followed by "json"), "reload", "loglevel LEVEL". A reply starts with
//   "OK\n" followed by the body, or is one line "ERROR reason\n".
//   ControlServer runs one thread around poll(): every socket is
//   non-blocking, each client has a deadline, its request line and the
//   reply are bounded, and there are at most max_clients at a time. A
//   command runs on a short-lived thread of its own (a reload may take a
//   while), so no client, slow or hostile, holds up another, and none
//   touches the milter's threads.
// DIAGNOSTICS
//   open_control_socket throws std::runtime_error naming the step and
//   errno's text (the caller logs it and runs on without the socket).
//   The server logs each command with the peer's pid/uid/gid at debug
//   level, and dropped clients (timeout, too long, too many) at info.
#pragma once

#include "icap-milter/common/unique_fd.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace icapm {

// ControlRequest - one parsed command line.
struct ControlRequest {
    enum class Verb { Stats, Health, Queue, Reload, LogLevel };
    Verb verb = Verb::Stats;
    bool json = false;  // "json" (or "--json") after stats, health, queue
    std::string arg;    // loglevel's LEVEL
};

// parse_control_request - a request line (without its line end); nullopt
// and *error for an unknown command or wrong arguments.
std::optional<ControlRequest> parse_control_request(std::string_view line, std::string* error);

// ControlReply - what a command answers.
struct ControlReply {
    bool ok = true;
    std::string body; // ok: the text shown to the operator; else the reason
};

// format_reply - the bytes on the wire: "OK\n" + body (with a final line
// end), or "ERROR reason\n"; cut to max_bytes with a note when longer.
std::string format_reply(const ControlReply& reply, std::size_t max_bytes);

// ControlHandler - runs one command (on a thread of its own); may throw.
using ControlHandler = std::function<ControlReply(const ControlRequest&)>;

// ControlLimits - the bounds of the server.
struct ControlLimits {
    std::chrono::milliseconds io_timeout{5000}; // to send the request, and again to read the reply
    std::chrono::milliseconds command_timeout{60000}; // a command still running then: the client is dropped
    std::size_t max_request = 1024;             // bytes of the request line, line end included
    std::size_t max_reply = 1u << 20;           // bytes of a reply
    std::size_t max_clients = 32;               // connections at once; more are closed at once
    std::size_t max_commands = 4;               // commands running at once; more are answered "busy"
};

// open_control_socket - bind and listen on a unix socket at path while
// still privileged: a stale socket is removed (one a live daemon answers
// on is not), the mode set, and the owner set to user (if any) and the
// group to group, else user's primary group. Returns the listening socket
// (non-blocking, close-on-exec).
UniqueFd open_control_socket(const std::string& path, unsigned mode, const std::string& user,
                             const std::string& group);

// ControlServer - serves a listening socket on a thread of its own until
// destroyed; removes path (when not empty) at the end.
class ControlServer {
public:
    ControlServer(UniqueFd listener, std::string path, ControlHandler handler, ControlLimits limits = {});
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace icapm
