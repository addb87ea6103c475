// NAME
//   log.cpp - logging setup: spdlog to syslog (facility mail), stderr or a file
// SUMMARY
//   The default logger is created once and never replaced. Its only sink
//   is a dist_sink whose child (syslog, stderr or file) log_init swaps
//   under the dist_sink's lock, so a reload never destroys a logger that
//   another thread is writing through.
//   syslog lines carry the message only: syslogd adds time, host, ident
//   and pid. stderr and file lines get a timestamp and level, and are
//   flushed line by line (operators tail them, tests read them back).
//   A reload reopens the log file (after logrotate, the new file), but
//   after the privilege drop that may be refused (a root-owned file or
//   directory): then the file already open stays in use, with a warning.
// DIAGNOSTICS
//   log_init throws std::invalid_argument on a bad target or level and
//   std::runtime_error when a new log file cannot be opened; in both cases
//   the previous target and level stay in force. The same file that cannot
//   be reopened is a warning logged to it, not an error.
#include "icap-milter/log/log.hpp"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include <syslog.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <stdexcept>

namespace icapm {
namespace {

constexpr std::string_view file_prefix = "file:";
constexpr const char* syslog_ident = "icap-milter";
constexpr const char* file_pattern = "%Y-%m-%d %H:%M:%S.%e [%P:%t] %l: %v";

// parse_level - our level words to spdlog's; warning is spdlog's "warn".
std::optional<spdlog::level::level_enum> parse_level(std::string_view level) noexcept {
    if (level == "error") return spdlog::level::err;
    if (level == "warning") return spdlog::level::warn;
    if (level == "info") return spdlog::level::info;
    if (level == "debug") return spdlog::level::debug;
    return std::nullopt;
}

// LogState - the one logger, its switchable sink and what it points at.
struct LogState {
    std::mutex mutex;  // serialises log_init calls (reload vs. control socket)
    std::shared_ptr<spdlog::sinks::dist_sink_mt> dist;
    std::shared_ptr<spdlog::logger> logger;
    std::string target;  // current target, "" before the first log_init
};

// state - the process-wide logging state.
LogState& state() {
    static LogState s;
    return s;
}

// make_sink - a fresh child sink for a target already checked.
spdlog::sink_ptr make_sink(const std::string& target) {
    spdlog::sink_ptr sink;
    if (target == "syslog") {
        // Formatting on with "%v": the payload only, no second timestamp.
        sink = std::make_shared<spdlog::sinks::syslog_sink_mt>(syslog_ident, LOG_PID, LOG_MAIL, true);
        sink->set_pattern("%v");
    } else if (target == "stderr") {
        sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        sink->set_pattern(file_pattern);
    } else {
        std::string path = target.substr(file_prefix.size());
        try {
            sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
        } catch (const spdlog::spdlog_ex& e) {
            throw std::runtime_error("log file " + path + ": " + e.what());
        }
        sink->set_pattern(file_pattern);
    }
    return sink;
}

} // namespace

// check_log_target - validate a LogTarget value without opening anything.
std::string check_log_target(std::string_view target) {
    if (target == "syslog" || target == "stderr") return {};
    if (target.substr(0, file_prefix.size()) == file_prefix) {
        std::string_view path = target.substr(file_prefix.size());
        if (path.empty() || path.front() != '/')
            return "log file must be an absolute path (file:/var/log/icap-milter.log)";
        return {};
    }
    return "log target must be syslog, stderr or file:PATH";
}

// log_init - install (first call) or retarget (later calls) the default logger.
void log_init(const std::string& target, const std::string& level) {
    auto lvl = parse_level(level);
    if (!lvl) throw std::invalid_argument("bad log level '" + sanitize(level, 40) +
                                          "' (error, warning, info or debug)");
    if (std::string why = check_log_target(target); !why.empty())
        throw std::invalid_argument(why + ": '" + sanitize(target, 80) + "'");

    LogState& s = state();
    std::lock_guard lock(s.mutex);
    if (!s.logger) {
        s.dist = std::make_shared<spdlog::sinks::dist_sink_mt>();
        s.logger = std::make_shared<spdlog::logger>(syslog_ident, s.dist);
    }
    // A second syslog sink would be opened before the first one's
    // destructor runs closelog(), which would reset the ident: keep it.
    // Files are reopened, so a reload after logrotate writes the new file.
    std::string not_reopened; // why the open file stays in use, if it does
    if (!(target == "syslog" && s.target == "syslog")) {
        try {
            spdlog::sink_ptr sink = make_sink(target);  // throws before anything changes
            s.dist->set_sinks({sink});
            s.target = target;
        } catch (const std::runtime_error& e) {
            // After the privilege drop the file or its directory may be
            // root's: the file already open is still ours to write.
            if (target != s.target || target.substr(0, file_prefix.size()) != file_prefix) throw;
            not_reopened = e.what();
        }
    }
    s.logger->set_level(*lvl);
    // Warnings and errors reach the disk at once; for stderr and files
    // every line does, so nothing waits in a buffer when someone looks.
    s.logger->flush_on(target == "syslog" ? spdlog::level::warn : spdlog::level::trace);
    if (spdlog::default_logger() != s.logger) spdlog::set_default_logger(s.logger);
    if (!not_reopened.empty())
        s.logger->warn("log: file={} not reopened ({}); the file opened before stays in use",
                       target.substr(file_prefix.size()), sanitize(not_reopened, 300));
}

// log_set_level - change the level at run time; false for an unknown word.
bool log_set_level(const std::string& level) {
    auto lvl = parse_level(level);
    if (!lvl) return false;
    LogState& s = state();
    std::lock_guard lock(s.mutex);
    if (s.logger) s.logger->set_level(*lvl);
    else spdlog::set_level(*lvl);  // before log_init: spdlog's own default logger
    return true;
}

namespace {

// sanitize_escaping - sanitize(), optionally escaping '"' as \x22.
std::string sanitize_escaping(std::string_view text, std::size_t max_len, bool quote) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(std::min(text.size(), max_len) + 3);
    for (unsigned char c : text) {
        bool plain = c >= 0x20 && c < 0x7f && !(quote && c == '"');
        std::size_t need = plain ? 1 : 4;
        // Never split an escape: a cut \x0 would read as a different byte.
        if (out.size() + need > max_len) {
            out += "...";
            return out;
        }
        if (plain) {
            out += static_cast<char>(c);
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0x0f];
        }
    }
    return out;
}

} // namespace

// sanitize - make mail-supplied text safe for one log line.
std::string sanitize(std::string_view text, std::size_t max_len) { return sanitize_escaping(text, max_len, false); }

// sanitize_value - the same, with '"' escaped as well.
std::string sanitize_value(std::string_view text, std::size_t max_len) { return sanitize_escaping(text, max_len, true); }

} // namespace icapm
