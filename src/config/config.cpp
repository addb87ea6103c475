// NAME
//   config.cpp - read, check and print icap-milter.conf
// SUMMARY
//   One "Key value" per line. Blank lines and lines starting with '#'
//   are ignored; a '#' after a blank starts a trailing comment. A value
//   may be written in double quotes, where only \" and \\ are escapes,
//   to hold blanks or '#' or to be empty (""). Keys are case-sensitive;
//   what each key accepts is declared in schema.cpp.
//   The config is trusted (root-owned) but may be damaged: lines are
//   capped at 4096 bytes, files at 1 MiB, NUL and control bytes are
//   rejected, and only the first 100 errors are kept.
// DIAGNOSTICS
//   Every problem becomes a ConfigError "file:line: reason" (line 0 for
//   a problem with the whole file); the caller prints them all and keeps
//   the old config (reload) or exits (start).
#include "icap-milter/config/config.hpp"
#include "icap-milter/common/ascii.hpp"

#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/config/schema.hpp"
#include "icap-milter/log/log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>

namespace icapm {
namespace {

constexpr std::size_t max_line_length = 4096;
constexpr std::size_t max_file_size = 1u << 20;
constexpr std::size_t max_errors = 100;

// is_blank - the separators between key and value.
bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

// skip_blanks - drop leading blanks.
std::string_view skip_blanks(std::string_view s) noexcept {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    return s;
}

// hex_byte - "\xNN" for a byte in an error message.
std::string hex_byte(unsigned char c) {
    static constexpr char hex[] = "0123456789ABCDEF";
    return std::string("\\x") + hex[c >> 4] + hex[c & 0x0f];
}

// edit_distance - Levenshtein distance, to suggest a key for a typo.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

// suggest - the known key a mistyped one most likely meant, or "".
std::string_view suggest(std::string_view key) {
    std::string lk = lower(key);
    std::string_view best;
    std::size_t best_distance = 3;  // more than two edits away is a different word
    for (const OptionSpec& s : schema()) {
        std::size_t d = edit_distance(lk, lower(s.name));
        if (d < best_distance) {
            best_distance = d;
            best = s.name;
        }
    }
    return best;
}

// valid_key - letters and digits, starting with a letter.
bool valid_key(std::string_view key) noexcept {
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    return !key.empty() && alpha(key.front()) &&
           std::all_of(key.begin(), key.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

// Line - one non-blank, non-comment line, taken apart.
struct Line {
    std::string_view key;
    std::string value;
};

// split_line - key and value of a line; "" in *error and nullopt for a
// blank or comment line; a reason in *error for a malformed line.
std::optional<Line> split_line(std::string_view text, std::string* error) {
    error->clear();
    for (unsigned char c : text) {
        if (c == 0) {
            *error = "NUL byte in line";
            return std::nullopt;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            *error = "control character " + hex_byte(c) + " in line";
            return std::nullopt;
        }
    }
    text = skip_blanks(text);
    if (text.empty() || text.front() == '#') return std::nullopt;

    std::size_t key_end = 0;
    while (key_end < text.size() && !is_blank(text[key_end])) ++key_end;
    Line line{text.substr(0, key_end), {}};
    if (!valid_key(line.key)) {
        *error = "'" + sanitize(line.key, 64) + "' is not a key (keys are letters and digits)";
        return std::nullopt;
    }
    std::string_view rest = skip_blanks(text.substr(key_end));
    if (rest.empty() || rest.front() == '#') {
        *error = "missing value for " + std::string(line.key) + " (write \"\" for an empty value)";
        return std::nullopt;
    }

    if (rest.front() == '"') {
        std::size_t i = 1;
        bool closed = false;
        while (i < rest.size()) {
            char c = rest[i++];
            if (c == '"') {
                closed = true;
                break;
            }
            if (c == '\\') {
                if (i == rest.size() || (rest[i] != '"' && rest[i] != '\\')) {
                    *error = "bad escape in quoted value (only \\\" and \\\\ are allowed)";
                    return std::nullopt;
                }
                c = rest[i++];
            }
            line.value += c;
        }
        if (!closed) {
            *error = "unterminated quoted value";
            return std::nullopt;
        }
        std::string_view after = skip_blanks(rest.substr(i));
        if (!after.empty() && after.front() != '#') {
            *error = "unexpected text after the quoted value";
            return std::nullopt;
        }
        return line;
    }

    // Unquoted: a '#' starts a comment only after a blank, so "a#b" is a value.
    std::size_t end = rest.size();
    for (std::size_t i = 1; i < rest.size(); ++i)
        if (rest[i] == '#' && is_blank(rest[i - 1])) {
            end = i;
            break;
        }
    while (end > 0 && is_blank(rest[end - 1])) --end;
    line.value = std::string(rest.substr(0, end));
    return line;
}

// ErrorSink - collects errors for one file, up to max_errors.
class ErrorSink {
public:
    ErrorSink(const std::string& file, std::vector<ConfigError>& errors) : file_(file), errors_(errors) {}
    // add - record one problem; false once the cap is reached (stop parsing).
    bool add(unsigned line, std::string reason) {
        if (errors_.size() >= max_errors) return false;
        errors_.push_back({file_, line, std::move(reason)});
        if (errors_.size() == max_errors) {
            errors_.push_back({file_, line, "too many errors, giving up"});
            return false;
        }
        return true;
    }
    bool any() const noexcept { return !errors_.empty(); }

private:
    const std::string& file_;
    std::vector<ConfigError>& errors_;
};

// parse_into - every line of text into config; problems go to sink.
// Returns false when parsing stopped early (too many errors).
bool parse_into(std::string_view text, Config& config, ErrorSink& sink) {
    std::map<std::string_view, unsigned> first_seen;
    unsigned number = 0;
    while (!text.empty()) {
        ++number;
        std::size_t nl = text.find('\n');
        std::string_view raw = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);  // edited on Windows
        if (raw.size() > max_line_length) {
            if (!sink.add(number, "line longer than " + std::to_string(max_line_length) + " bytes")) return false;
            continue;
        }
        std::string why;
        auto line = split_line(raw, &why);
        if (!line) {
            if (!why.empty() && !sink.add(number, why)) return false;
            continue;
        }
        const OptionSpec* spec = find_option(line->key);
        if (!spec) {
            std::string reason = "unknown key '" + std::string(line->key) + "'";
            if (auto s = suggest(line->key); !s.empty()) reason += " (did you mean " + std::string(s) + "?)";
            if (!sink.add(number, reason)) return false;
            continue;
        }
        auto [it, fresh] = first_seen.emplace(spec->name, number);
        if (!fresh && !spec->repeatable) {
            if (!sink.add(number, std::string(spec->name) + " given twice (first on line " +
                                      std::to_string(it->second) + ")"))
                return false;
            continue;
        }
        if (std::string err = spec->set(config, line->value); !err.empty())
            if (!sink.add(number, std::string(spec->name) + ": " + err)) return false;
    }
    // Whole-config rules: only when the line-level rules did not already
    // say the same thing (a bad IcapServer line is reported on its line).
    if (config.icap_servers.empty() && !first_seen.contains("IcapServer"))
        return sink.add(0, "no IcapServer given; at least one is required");
    for (auto [key, action] : {std::pair{"OnInfected", config.on_infected}, std::pair{"OnUnscannable", config.on_unscannable},
                               std::pair{"OnAmbiguous", config.on_ambiguous},
                               std::pair{"OnBlocked", config.on_blocked}})
        if (action == Action::Redirect && config.redirect_address.empty())
            if (!sink.add(first_seen.contains(key) ? first_seen[key] : 0,
                          std::string(key) + " redirect needs RedirectAddress"))
                return false;
    return true;
}

// parse_port - 1-65535, digits only.
std::optional<std::uint16_t> parse_port(std::string_view text) noexcept {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || port == 0 || port > 65535)
        return std::nullopt;
    return static_cast<std::uint16_t>(port);
}

} // namespace

// to_string - the config-file word for an action.
const char* to_string(Action a) noexcept {
    switch (a) {
    case Action::Accept: return "accept";
    case Action::Reject: return "reject";
    case Action::Discard: return "discard";
    case Action::Tempfail: return "tempfail";
    case Action::Hold: return "hold";
    case Action::Redirect: return "redirect";
    case Action::Notify: return "notify";
    case Action::Clean: return "clean";
    }
    return "?";
}

// parse_action - the action a word names.
std::optional<Action> parse_action(std::string_view text) noexcept {
    for (Action a : {Action::Accept, Action::Reject, Action::Discard, Action::Tempfail, Action::Hold, Action::Redirect,
                     Action::Notify, Action::Clean})
        if (text == to_string(a)) return a;
    return std::nullopt;
}

// str - "file:line: reason", or "file: reason" for whole-file problems.
std::string ConfigError::str() const {
    if (line == 0) return file + ": " + reason;
    return file + ":" + std::to_string(line) + ": " + reason;
}

// parse_config_text - parse and validate text; nullptr when anything is wrong.
std::shared_ptr<const Config> parse_config_text(const std::string& text, const std::string& name,
                                                std::vector<ConfigError>& errors) {
    errors.clear();
    if (text.size() > max_file_size) {
        errors.push_back({name, 0, "larger than " + std::to_string(max_file_size) + " bytes"});
        return nullptr;
    }
    auto config = std::make_shared<Config>();
    ErrorSink sink(name, errors);
    parse_into(text, *config, sink);
    if (sink.any()) return nullptr;
    return config;
}

// load_config - read a regular file of bounded size, then parse it.
std::shared_ptr<const Config> load_config(const std::string& path, std::vector<ConfigError>& errors) {
    errors.clear();
    auto fail = [&](std::string reason) {
        errors.push_back({path, 0, std::move(reason)});
        return nullptr;
    };
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) return fail(std::string("cannot open: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail(std::string("cannot stat: ") + std::strerror(errno));
    // Not a FIFO or device: a read that never ends would hang the start.
    if (!S_ISREG(st.st_mode)) return fail("not a regular file");
    if (static_cast<std::uint64_t>(st.st_size) > max_file_size)
        return fail("larger than " + std::to_string(max_file_size) + " bytes");
    std::string text;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(std::string("read error: ") + std::strerror(errno));
        if (n == 0) break;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > max_file_size)  // grew while we read it
            return fail("larger than " + std::to_string(max_file_size) + " bytes");
    }
    return parse_config_text(text, path, errors);
}

// dump_config - every key in schema order, in re-parseable form.
std::string dump_config(const Config& config) {
    std::string out;
    for (const OptionSpec& s : schema()) {
        std::vector<std::string> values = s.get(config);
        if (values.empty()) out += "# " + std::string(s.name) + " (none set)\n";
        for (const std::string& v : values) out += std::string(s.name) + " " + quote_value(v) + "\n";
    }
    return out;
}

// parse_milter_socket - libmilter's socket spellings, checked up front so
// a typo is a config error with a line number, not a failed start.
std::optional<MilterSocket> parse_milter_socket(std::string_view text, std::string* error) {
    auto fail = [&](std::string reason) -> std::optional<MilterSocket> {
        if (error) *error = std::move(reason);
        return std::nullopt;
    };
    MilterSocket sock;
    std::string_view rest;
    if (text.starts_with("unix:")) rest = text.substr(5);
    else if (text.starts_with("local:")) rest = text.substr(6);
    else if (text.starts_with("/")) rest = text;
    else if (text.starts_with("inet:")) sock.kind = MilterSocket::Kind::Inet, rest = text.substr(5);
    else if (text.starts_with("inet6:")) sock.kind = MilterSocket::Kind::Inet6, rest = text.substr(6);
    else return fail("socket must be unix:PATH, inet:PORT@HOST or inet6:PORT@HOST");

    if (sock.kind == MilterSocket::Kind::Unix) {
        if (rest.empty() || rest.front() != '/') return fail("unix socket path must be absolute");
        if (rest.size() >= sizeof(sockaddr_un{}.sun_path))
            return fail("unix socket path longer than " + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                        " bytes");
        sock.path = std::string(rest);
        return sock;
    }
    std::size_t at = rest.find('@');
    auto port = parse_port(rest.substr(0, at));
    if (!port) return fail("socket port must be a number from 1 to 65535");
    sock.port = *port;
    if (at != std::string_view::npos) {
        std::string_view host = rest.substr(at + 1);
        bool v6 = sock.kind == MilterSocket::Kind::Inet6;
        bool ok = !host.empty() && std::all_of(host.begin(), host.end(), [v6](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                   c == '-' || c == '_' || (v6 && c == ':');
        });
        if (!ok) return fail(v6 ? "bad socket host (write inet6:PORT@::1, without brackets)" : "bad socket host");
        sock.host = std::string(host);
    }
    return sock;
}

} // namespace icapm
