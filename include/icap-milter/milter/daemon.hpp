// NAME
//   daemon.hpp - process set-up: detach, pid file, socket, privileges
// SUMMARY
//   The privileged steps main() runs, in this order: detach, open the
//   milter socket, fix its mode/owner, write the pid file, drop to User.
// DIAGNOSTICS
//   Each function throws std::runtime_error with the failing step and
//   errno text; main() logs it and exits non-zero.
#pragma once

#include "icap-milter/config/config.hpp"

#include <string>

namespace icapm {

// daemonize - fork into the background, new session, stdio on /dev/null.
void daemonize();

// open_milter_socket - smfi_setconn + smfi_opensocket (stale unix socket
// removed), then SocketMode/SocketGroup/User ownership for unix sockets
// and TCP_NODELAY on inet listeners (inherited by accepted sockets).
void open_milter_socket(const Config& config);

// set_listener_nodelay - TCP_NODELAY on every listening inet socket we own;
// returns how many were changed.
int set_listener_nodelay();

// PidFile - writes our pid; removes the file on destruction.
class PidFile {
public:
    explicit PidFile(std::string path);
    ~PidFile();
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;

private:
    std::string path_;
};

// drop_privileges - become User (and its groups) for good; no-op when
// User is empty. Verifies root cannot be regained.
void drop_privileges(const std::string& user);

} // namespace icapm
