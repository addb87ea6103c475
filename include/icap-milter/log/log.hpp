// NAME
//   log.hpp - logging setup (spdlog to syslog, stderr or a file)
// SUMMARY
//   syslog uses facility mail and ident "icap-milter". Use spdlog's
//   functions (spdlog::info ...) after log_init. Values that come from
//   mail go through sanitize() before they reach a log line.
#pragma once

#include <string>
#include <string_view>

namespace icapm {

// log_init - install the default logger; throws std::invalid_argument on
// a bad target or level, std::runtime_error when a new log file cannot be
// opened (the previous target then stays in place). Safe to call again
// (reload): the logger object stays the same, only its sink is swapped,
// so threads logging meanwhile are never left with a dangling logger.
// The same file is reopened (logrotate); when that is refused (e.g. a
// root-owned file after the privilege drop) the open file stays in use
// and a warning says so.
void log_init(const std::string& target, const std::string& level);

// check_log_target - "" when target is syslog, stderr or file:/ABS/PATH,
// otherwise why not (the config parser reports it with a line number).
std::string check_log_target(std::string_view target);

// log_set_level - change the level at run time ("error", "warning", "info", "debug").
bool log_set_level(const std::string& level);

// sanitize - printable ASCII only, control bytes as \xNN, at most max_len
// characters (an ellipsis marks a cut).
std::string sanitize(std::string_view text, std::size_t max_len = 256);

// sanitize_value - sanitize() for a value inside a quoted key="value"
// field: '"' is \x22 too, so a sender's file name cannot end the field
// and forge others.
std::string sanitize_value(std::string_view text, std::size_t max_len = 256);

} // namespace icapm
