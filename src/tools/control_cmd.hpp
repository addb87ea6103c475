// NAME
//   control_cmd.hpp - icap-milterctl stats|health|queue|reload|loglevel:
//   the client side of the control socket
// SUMMARY
//   Turns the command line into one request line, sends it to the
//   daemon's ControlSocket, and prints the reply's body. Every step is
//   bounded by one deadline (poll()), and the reply by a size.
// DIAGNOSTICS
//   Returns the exit status: 0 the daemon answered OK, 1 it answered an
//   error (printed to err), 2 usage, 3 no answer (cannot connect, timeout,
//   a reply that is not the protocol's).
#pragma once

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace icapm {

// control_request_line - the request for args ("stats --json" -> "stats json"); nullopt: not a control command or bad usage.
std::optional<std::string> control_request_line(const std::vector<std::string>& args);

// is_control_command - whether args[0] names a control socket command.
bool is_control_command(const std::string& word);

// control_command - send args' request to the socket at path and print the reply.
int control_command(const std::vector<std::string>& args, const std::string& path, std::ostream& out,
                    std::ostream& err, std::chrono::milliseconds timeout = std::chrono::milliseconds(0));

// control_exchange - send line to the socket at path; the raw reply, or nullopt and *error.
std::optional<std::string> control_exchange(const std::string& path, const std::string& line,
                                            std::chrono::milliseconds timeout, std::string* error);

} // namespace icapm
