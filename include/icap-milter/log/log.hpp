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
// a bad target or level. Safe to call again (reload).
void log_init(const std::string& target, const std::string& level);

// log_set_level - change the level at run time ("error", "warning", "info", "debug").
bool log_set_level(const std::string& level);

// sanitize - printable ASCII only, control bytes as \xNN, at most max_len
// characters (an ellipsis marks a cut).
std::string sanitize(std::string_view text, std::size_t max_len = 256);

} // namespace icapm
