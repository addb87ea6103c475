// NAME
//   quarantine_cmd.hpp - icap-milterctl quarantine: list, show, export,
//   release, delete, purge
// SUMMARY
//   The operator's side of the quarantine store, as a function over
//   arguments and streams so the unit tests drive it without a process.
// DIAGNOSTICS
//   Returns the exit status: 0 ok, 1 not found or failed, 2 usage, 3 a
//   file or configuration problem. Messages go to err.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// QuarantineSettings - where the quarantine is and how to re-inject.
struct QuarantineSettings {
    std::string dir;                                   // QuarantineDirectory (--dir)
    std::string sendmail = "/usr/sbin/sendmail -G -i"; // SendmailCommand (--sendmail)
};

// quarantine_command - run `quarantine ARGS...` (args[0] is the
// subcommand); now = 0 means the wall clock.
int quarantine_command(const std::vector<std::string>& args, QuarantineSettings settings, std::ostream& out,
                       std::ostream& err, std::int64_t now = 0);

// parse_age - "30d", "12h", "90m", "3600s", "2w" or bare seconds.
std::optional<std::chrono::seconds> parse_age(std::string_view text);

// parse_since - a duration before now, or a UTC date "YYYY-MM-DD" with
// an optional "THH:MM[:SS][Z]" (a blank may stand for the T).
std::optional<std::int64_t> parse_since(std::string_view text, std::int64_t now);

// split_command - a command line split on blanks (no shell, no quoting).
std::vector<std::string> split_command(std::string_view command);

} // namespace icapm
