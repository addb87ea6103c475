// NAME
//   notify.hpp - tell systemd about start-up, reloads and stop (Type=notify)
// SUMMARY
//   The service manager's readiness protocol (sd_notify(3)): one datagram
//   of "KEY=VALUE" lines to the AF_UNIX socket named in $NOTIFY_SOCKET
//   ("@name" for the abstract namespace). Without $NOTIFY_SOCKET every
//   call does nothing, so a daemon started by hand or by another init
//   behaves as before. A failure to send is logged once and never stops
//   the daemon.
#pragma once

#include <string_view>

namespace icapm {

// notify_service - send state (e.g. "READY=1\nSTATUS=listening") to the
// service manager; false when there is none or the datagram was not sent.
bool notify_service(std::string_view state) noexcept;

} // namespace icapm
