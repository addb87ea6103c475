// NAME
//   quarantine_cmd.cpp - icap-milterctl quarantine: the operator commands
// SUMMARY
//   quarantine list [--since DUR|DATE] [--virus S] [--rcpt S] [--json]
//   quarantine show ID | export ID | delete ID
//   quarantine release ID [--to ADDR ...]
//   quarantine purge --older-than DUR
//   (each also takes --dir DIR and --sendmail CMD.)
//   release runs SendmailCommand split on blanks, without a shell:
//   CMD -f SENDER -- RCPT... ("--" ends the options, so no address can
//   become one; Postfix's sendmail(1) documents it, Sendmail's getopt
//   honours it). The stored message goes to its stdin behind one line
//   "X-Icap-Milter-Released: ID". The release is recorded before the
//   re-injection, because the milter may see the message before sendmail
//   exits, and taken back when sendmail fails.
// DIAGNOSTICS
//   Exit status 0 ok, 1 no such message or the release failed, 2 usage
//   (an ID that is not an ID included), 3 the directory or a file could
//   not be used. Everything read from a message or a sidecar is printed
//   with non-printable bytes escaped as \xNN.
#include "quarantine_cmd.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/quarantine/store.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

extern char** environ;

namespace icapm {

namespace {

constexpr std::size_t kShowHeaderBytes = 64 * 1024;
constexpr std::size_t kFieldMax = 4096;

// usage_error - the subcommand synopsis on err; status 2.
int usage_error(std::ostream& err, const std::string& why) {
    err << "icap-milterctl quarantine: " << why << "\n"
        << "usage: icap-milterctl [-c CONF] quarantine list [--since DUR|DATE] [--virus S] [--rcpt S] [--json]\n"
        << "       icap-milterctl [-c CONF] quarantine show|export|delete ID\n"
        << "       icap-milterctl [-c CONF] quarantine release ID [--to ADDR ...]\n"
        << "       icap-milterctl [-c CONF] quarantine purge --older-than DUR\n"
        << "  (every form also takes --dir DIR and --sendmail CMD)\n";
    return 2;
}

// iso - a Unix time as ISO 8601 UTC.
std::string iso(std::int64_t t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    char buf[32] = "?";
    if (gmtime_r(&tt, &tm)) std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// safe - a value fit for the terminal.
std::string safe(std::string_view text) { return sanitize(text, kFieldMax); }

// joined - list items, sanitised, separated by sep; "-" when empty.
std::string joined(const std::vector<std::string>& list, const char* sep) {
    if (list.empty()) return "-";
    std::string out;
    for (const auto& s : list) out += (out.empty() ? "" : sep) + safe(s);
    return out;
}

// sender_text - the envelope sender as printed ("<>" for the null sender).
std::string sender_text(const std::string& s) { return s.empty() ? "<>" : safe(s); }

// plain_address - an address without enclosing <>, or "" when it holds
// blanks or control bytes (never passed to sendmail).
std::string plain_address(std::string_view a) {
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    for (unsigned char c : a)
        if (c <= 0x20 || c == 0x7f) return {};
    return std::string(a);
}

// Args - the options every subcommand shares, and the rest.
struct Args {
    std::vector<std::string> positional;
    std::vector<std::string> to;
    std::string since, virus, rcpt, older_than;
    bool json = false;
};

// parse_args - split args[1..] into options and positionals; false on a bad option.
bool parse_args(const std::vector<std::string>& args, QuarantineSettings& settings, Args& a, std::string& why) {
    for (std::size_t i = 1; i < args.size(); ++i) {
        const std::string& s = args[i];
        auto value = [&](std::string& into) {
            if (i + 1 >= args.size()) {
                why = s + " needs a value";
                return false;
            }
            into = args[++i];
            return true;
        };
        std::string v;
        if (s == "--dir") {
            if (!value(settings.dir)) return false;
        } else if (s == "--sendmail") {
            if (!value(settings.sendmail)) return false;
        } else if (s == "--since") {
            if (!value(a.since)) return false;
        } else if (s == "--virus") {
            if (!value(a.virus)) return false;
        } else if (s == "--rcpt") {
            if (!value(a.rcpt)) return false;
        } else if (s == "--older-than") {
            if (!value(a.older_than)) return false;
        } else if (s == "--to") {
            if (!value(v)) return false;
            a.to.push_back(v);
        } else if (s == "--json") {
            a.json = true;
        } else if (s.starts_with("-")) {
            why = "unknown option " + safe(s);
            return false;
        } else {
            a.positional.push_back(s);
        }
    }
    return true;
}

// list_cmd - one line per entry: ID time sender rcpts viruses size released.
int list_cmd(const QuarantineStore& store, const Args& a, std::int64_t now, std::ostream& out, std::ostream& err) {
    QuarantineFilter f;
    if (!a.since.empty()) {
        auto since = parse_since(a.since, now);
        if (!since) return usage_error(err, "--since wants a duration (30d, 12h) or a date (2026-01-31)");
        f.since = *since;
    }
    f.virus = a.virus;
    f.recipient = a.rcpt;
    auto entries = store.list(f);
    if (a.json) {
        out << "[";
        for (std::size_t i = 0; i < entries.size(); ++i)
            out << (i ? ",\n " : "\n ") << quarantine_json(entries[i], -1);
        out << "\n]\n";
        return 0;
    }
    for (const auto& e : entries) {
        out << e.id << ' ' << iso(e.time) << ' ' << sender_text(e.sender) << ' ' << joined(e.recipients, ",") << ' '
            << joined(e.viruses, ",") << ' ' << e.size << ' '
            << (e.released ? "released:" + std::to_string(e.released->count) : std::string("-")) << "\n";
    }
    return 0;
}

// header_lines - the top-level header block of a message, line by line.
std::vector<std::string> header_lines(ByteSource& src) {
    std::string head;
    std::vector<char> buf(8192);
    for (std::size_t n; head.size() < kShowHeaderBytes && (n = src.read(buf)) > 0;) head.append(buf.data(), n);
    std::vector<std::string> lines;
    std::size_t pos = 0;
    while (pos < head.size() && pos < kShowHeaderBytes) {
        std::size_t nl = head.find('\n', pos);
        std::string line = head.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) break;
        lines.push_back(line);
        if (nl == std::string::npos) break;
        pos = nl + 1;
    }
    return lines;
}

// show_cmd - the sidecar, then the stored message's header block.
int show_cmd(const QuarantineStore& store, const std::string& id, std::ostream& out, std::ostream& err) {
    auto e = store.find(id);
    auto src = e ? store.open_message(id) : nullptr;
    if (!e || !src) {
        err << "icap-milterctl: no quarantined message " << id << "\n";
        return 1;
    }
    out << "id:          " << e->id << "\n"
        << "time:        " << iso(e->time) << " (" << e->time << ")\n"
        << "queue id:    " << safe(e->queue_id) << "\n"
        << "job id:      " << safe(e->job_id) << "\n"
        << "client:      " << safe(e->client) << "\n"
        << "sender:      " << sender_text(e->sender) << "\n"
        << "recipients:  " << joined(e->recipients, ", ") << "\n"
        << "status:      " << to_string(e->status) << "\n"
        << "action:      " << to_string(e->action) << "\n"
        << "verdicts:    " << safe(e->verdicts) << "\n"
        << "viruses:     " << joined(e->viruses, ", ") << "\n"
        << "size:        " << e->size << "\n"
        << "sha256:      " << safe(e->sha256) << "\n"
        << "body sha256: " << safe(e->body_sha256) << "\n";
    if (e->released)
        out << "released:    " << iso(e->released->time) << " to " << joined(e->released->to, ", ") << " (count "
            << e->released->count << ", passed the milter " << e->released->claimed << ")\n";
    else
        out << "released:    no\n";
    out << "headers:\n";
    for (auto line : header_lines(*src)) {
        // Folded lines keep their indent readable; other tabs are escaped.
        if (!line.empty() && line[0] == '\t') line[0] = ' ';
        out << "  " << safe(line) << "\n";
    }
    return 0;
}

// export_cmd - the stored message, byte for byte.
int export_cmd(const QuarantineStore& store, const std::string& id, std::ostream& out, std::ostream& err) {
    auto src = store.open_message(id);
    if (!src) {
        err << "icap-milterctl: no quarantined message " << id << "\n";
        return 1;
    }
    std::vector<char> buf(64 * 1024);
    for (std::size_t n; (n = src->read(buf)) > 0;) out.write(buf.data(), static_cast<std::streamsize>(n));
    out.flush();
    if (!out) {
        err << "icap-milterctl: cannot write the message\n";
        return 3;
    }
    return 0;
}

// SpawnActions - posix_spawn_file_actions_t, destroyed once.
struct SpawnActions {
    posix_spawn_file_actions_t fa;
    SpawnActions() { ::posix_spawn_file_actions_init(&fa); }
    ~SpawnActions() { ::posix_spawn_file_actions_destroy(&fa); }
    SpawnActions(const SpawnActions&) = delete;
    SpawnActions& operator=(const SpawnActions&) = delete;
};

// SpawnAttr - posix_spawnattr_t, destroyed once.
struct SpawnAttr {
    posix_spawnattr_t at;
    SpawnAttr() { ::posix_spawnattr_init(&at); }
    ~SpawnAttr() { ::posix_spawnattr_destroy(&at); }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
};

// write_fd - write every byte; 0 or the errno that stopped it.
int write_fd(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return 0;
}

// feed - the marker line (in the message's own line end) and the message.
int feed(int fd, std::string_view id, ByteSource& message) {
    std::vector<char> buf(64 * 1024);
    std::size_t n = message.read(buf);
    std::string_view first(buf.data(), n);
    std::size_t nl = first.find('\n');
    bool crlf = nl == std::string_view::npos || (nl > 0 && first[nl - 1] == '\r');
    std::string marker = std::string(kReleaseHeader) + ": " + release_marker(id) + (crlf ? "\r\n" : "\n");
    if (int e = write_fd(fd, marker.data(), marker.size())) return e;
    for (; n > 0; n = message.read(buf))
        if (int e = write_fd(fd, buf.data(), n)) return e;
    return 0;
}

// run_sendmail - spawn argv (no shell) with the message on stdin; its exit
// status, or -1 when it could not run or died of a signal.
int run_sendmail(const std::vector<std::string>& argv, std::string_view id, ByteSource& message, std::ostream& err) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    UniqueFd rd(p[0]), wr(p[1]);
    SpawnActions actions;
    SpawnAttr attr;
    ::posix_spawn_file_actions_adddup2(&actions.fa, rd.get(), 0);
    // sendmail's own chatter goes to stderr, never into our stdout.
    ::posix_spawn_file_actions_adddup2(&actions.fa, 2, 1);
    sigset_t none, pipe_only, old;
    sigemptyset(&none);
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    ::posix_spawnattr_setsigmask(&attr.at, &none);
    ::posix_spawnattr_setsigdefault(&attr.at, &pipe_only);
    ::posix_spawnattr_setflags(&attr.at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> cargv;
    for (const auto& s : argv) cargv.push_back(const_cast<char*>(s.c_str()));
    cargv.push_back(nullptr);
    pid_t pid = -1;
    if (int rc = ::posix_spawn(&pid, cargv[0], &actions.fa, &attr.at, cargv.data(), environ); rc != 0) {
        err << "icap-milterctl: cannot run " << safe(argv[0]) << ": " << std::strerror(rc) << "\n";
        return -1;
    }
    rd.reset();
    // A sendmail that exits early must not kill us with SIGPIPE: block it
    // in this thread and take back the one the write raised.
    ::pthread_sigmask(SIG_BLOCK, &pipe_only, &old);
    int werr = 0;
    try {
        werr = feed(wr.get(), id, message);
    } catch (const std::system_error& e) {
        err << "icap-milterctl: " << e.what() << "\n";
        werr = EIO;
    }
    wr.reset();
    if (werr == EPIPE) {
        timespec zero{};
        ::sigtimedwait(&pipe_only, nullptr, &zero);
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw std::system_error(errno, std::generic_category(), "waitpid");
    if (werr != 0 && werr != EPIPE) return -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    err << "icap-milterctl: " << safe(argv[0]) << " killed by signal " << WTERMSIG(status) << "\n";
    return -1;
}

// release_cmd - re-inject to the original (or the given) recipients.
int release_cmd(QuarantineStore& store, const std::string& id, const std::vector<std::string>& to_args,
                const QuarantineSettings& settings, std::int64_t now, std::ostream& out, std::ostream& err) {
    std::vector<std::string> command = split_command(settings.sendmail);
    if (command.empty() || command[0].front() != '/') {
        err << "icap-milterctl: the sendmail command must start with an absolute path: '" << safe(settings.sendmail)
            << "'\n";
        return 3;
    }
    auto e = store.find(id);
    if (!e) {
        err << "icap-milterctl: no quarantined message " << id << "\n";
        return 1;
    }
    std::vector<std::string> to;
    for (const auto& r : to_args.empty() ? e->recipients : to_args) {
        std::string a = plain_address(r);
        if (a.empty()) {
            err << "icap-milterctl: not a plain address: '" << safe(r) << "'\n";
            return to_args.empty() ? 1 : 2;
        }
        to.push_back(a);
    }
    if (to.empty()) {
        err << "icap-milterctl: " << id << " has no recipients; give --to ADDR\n";
        return 1;
    }
    std::string sender = e->sender.empty() ? std::string() : plain_address(e->sender);
    if (!e->sender.empty() && sender.empty()) {
        err << "icap-milterctl: the stored sender is not a plain address: '" << safe(e->sender) << "'\n";
        return 1;
    }
    auto message = store.open_message(id);
    if (!message) {
        err << "icap-milterctl: no quarantined message " << id << "\n";
        return 1;
    }
    std::vector<std::string> argv = command;
    argv.insert(argv.end(), {"-f", sender.empty() ? "<>" : sender, "--"});
    argv.insert(argv.end(), to.begin(), to.end());
    // Recorded first: the milter may see the message before sendmail exits.
    if (!store.mark_released(id, to, now)) {
        err << "icap-milterctl: no quarantined message " << id << "\n";
        return 1;
    }
    int status = run_sendmail(argv, id, *message, err);
    if (status != 0) {
        store.unmark_released(id);
        if (status > 0) err << "icap-milterctl: " << safe(command[0]) << " exited with status " << status << "\n";
        err << "icap-milterctl: " << id << " was not released\n";
        return 1;
    }
    out << "released " << id << " to " << joined(to, ", ") << "\n";
    return 0;
}

} // namespace

// parse_age - digits and one unit; bounded far below overflow.
std::optional<std::chrono::seconds> parse_age(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    if (digits == 0 || digits > 9) return std::nullopt;
    std::string_view unit = text.substr(digits);
    std::int64_t scale = 0;
    if (unit.empty() || unit == "s") scale = 1;
    else if (unit == "m") scale = 60;
    else if (unit == "h") scale = 3600;
    else if (unit == "d") scale = 86400;
    else if (unit == "w") scale = 7 * 86400;
    else return std::nullopt;
    std::int64_t n = std::stoll(std::string(text.substr(0, digits)));
    return std::chrono::seconds(n * scale);
}

// parse_since - a duration ago, else one of the ISO forms.
std::optional<std::int64_t> parse_since(std::string_view text, std::int64_t now) {
    if (auto age = parse_age(text)) return now - static_cast<std::int64_t>(age->count());
    const std::string s(text);
    for (const char* format : {"%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%MZ",
                               "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"}) {
        std::tm tm{};
        const char* end = ::strptime(s.c_str(), format, &tm);
        if (end && *end == '\0') return static_cast<std::int64_t>(::timegm(&tm));
    }
    return std::nullopt;
}

// split_command - fields separated by spaces or tabs.
std::vector<std::string> split_command(std::string_view command) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < command.size()) {
        while (i < command.size() && (command[i] == ' ' || command[i] == '\t')) ++i;
        std::size_t start = i;
        while (i < command.size() && command[i] != ' ' && command[i] != '\t') ++i;
        if (i > start) out.emplace_back(command.substr(start, i - start));
    }
    return out;
}

// quarantine_command - parse, open the store, dispatch.
int quarantine_command(const std::vector<std::string>& args, QuarantineSettings settings, std::ostream& out,
                       std::ostream& err, std::int64_t now) {
    if (args.empty()) return usage_error(err, "missing subcommand");
    const std::string& sub = args[0];
    Args a;
    std::string why;
    if (!parse_args(args, settings, a, why)) return usage_error(err, why);
    if (now == 0) now = static_cast<std::int64_t>(std::time(nullptr));

    const bool wants_id = sub == "show" || sub == "export" || sub == "delete" || sub == "release";
    if (wants_id) {
        if (a.positional.size() != 1) return usage_error(err, sub + " wants exactly one ID");
        if (!valid_quarantine_id(a.positional[0]))
            return usage_error(err, "not a quarantine ID: '" + safe(a.positional[0]) + "'");
    } else if (sub == "list" || sub == "purge") {
        if (!a.positional.empty()) return usage_error(err, "unexpected argument " + safe(a.positional[0]));
    } else {
        return usage_error(err, "unknown subcommand " + safe(sub));
    }
    if (sub != "list" && (!a.since.empty() || !a.virus.empty() || !a.rcpt.empty() || a.json))
        return usage_error(err, "--since, --virus, --rcpt and --json belong to list");
    if (sub != "release" && !a.to.empty()) return usage_error(err, "--to belongs to release");
    if (sub != "purge" && !a.older_than.empty()) return usage_error(err, "--older-than belongs to purge");
    if (settings.dir.empty()) {
        err << "icap-milterctl: no quarantine directory: give --dir DIR\n";
        return 3;
    }

    try {
        QuarantineStore store(settings.dir);
        const std::string id = wants_id ? a.positional[0] : std::string();
        if (sub == "list") return list_cmd(store, a, now, out, err);
        if (sub == "show") return show_cmd(store, id, out, err);
        if (sub == "export") return export_cmd(store, id, out, err);
        if (sub == "release") return release_cmd(store, id, a.to, settings, now, out, err);
        if (sub == "delete") {
            if (!store.remove(id)) {
                err << "icap-milterctl: no quarantined message " << id << "\n";
                return 1;
            }
            out << "deleted " << id << "\n";
            return 0;
        }
        // purge
        auto age = parse_age(a.older_than);
        if (!age || age->count() == 0) return usage_error(err, "purge wants --older-than DUR (e.g. 30d)");
        auto removed = store.enforce(*age, 0, now);
        for (const auto& r : removed.ids) out << "deleted " << r << "\n";
        out << "purged " << removed.ids.size() << " message(s), " << removed.bytes << " bytes\n";
        return 0;
    } catch (const std::system_error& e) {
        err << "icap-milterctl: " << e.what() << "\n";
        return 3;
    }
}

} // namespace icapm
