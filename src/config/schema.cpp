// NAME
//   schema.cpp - the one declaration of every configuration key
// SUMMARY
//   Each key is declared here once: name, type, range and help, with
//   accessors bound to its Config field; its default is read through the
//   getter from a default Config, whose initialisers are the only place
//   defaults are written. The parser, dump_config(),
//   the sample config and the man page's OPTIONS section all come from
//   this table, and tests/unit/test_docs.cpp fails when the shipped docs
//   drift from it.
//   A range is written once, as the text administrators read ("1-256",
//   "1K-4G", "reject|discard|accept"); the checks are derived from that
//   text, so the documented range and the enforced one cannot differ.
// DIAGNOSTICS
//   A setter returns a one-line reason for a bad value ("" when fine);
//   the parser adds file and line. A range text that does not parse is a
//   bug in this table and throws std::logic_error when the table is built.
#include "icap-milter/config/schema.hpp"
#include "icap-milter/common/ascii.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/net/smtp_client.hpp"
#include "icap-milter/net/listen_address.hpp"
#include "icap-milter/net/uri.hpp"
#include "icap-milter/policy/bypass.hpp"
#include "icap-milter/policy/filters.hpp"
#include "icap-milter/policy/template.hpp"
#include "icap-milter/scan/server_spec.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>
#include <stdexcept>

namespace icapm {
namespace {

using Setter = std::function<std::string(Config&, std::string_view)>;
using Getter = std::function<std::vector<std::string>(const Config&)>;
using Check = std::string (*)(std::string_view);

// Key - the documentation half of a declaration. A key's default is not
// written here: it is what the getter reads from a default Config, so
// Config's initialisers are the one place defaults are declared.
struct Key {
    std::string_view section;
    std::string_view name;
    std::string_view range;
    std::string_view help;
};

// parse_digits - an unsigned decimal number and nothing else; no sign, no blanks.
std::optional<std::uint64_t> parse_digits(std::string_view text, int base = 10) noexcept {
    if (text.empty()) return std::nullopt;
    std::uint64_t v = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return v;
}

// split_range - "lo-hi" into its halves; a malformed range is a table bug.
std::pair<std::string_view, std::string_view> split_range(std::string_view name, std::string_view range) {
    auto dash = range.find('-');
    if (dash == std::string_view::npos || dash == 0 || dash + 1 == range.size())
        throw std::logic_error("schema: bad range for " + std::string(name));
    return {range.substr(0, dash), range.substr(dash + 1)};
}

// bounds - both ends of a range, parsed with the key's own value parser.
template <class T, class Parse>
std::pair<T, T> bounds(std::string_view name, std::string_view range, Parse parse) {
    auto [lo_text, hi_text] = split_range(name, range);
    auto lo = parse(lo_text);
    auto hi = parse(hi_text);
    if (!lo || !hi || *hi < *lo) throw std::logic_error("schema: bad range for " + std::string(name));
    return {*lo, *hi};
}

// words - the alternatives of an enum range, "a|b|c".
std::vector<std::string_view> words(std::string_view range) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (;;) {
        auto bar = range.find('|', start);
        out.push_back(range.substr(start, bar - start));
        if (bar == std::string_view::npos) break;
        start = bar + 1;
    }
    return out;
}

// out_of_range - the common wording for a value outside its range.
std::string out_of_range(std::string_view value, std::string_view range) {
    return "value " + std::string(value) + " is out of range " + std::string(range);
}

// spec - assemble one OptionSpec from its documentation and accessors.
OptionSpec spec(const Key& k, OptionType type, Setter set, Getter get, bool repeatable = false,
                std::string_view sample = {}) {
    const std::vector<std::string> defaults = get(Config{});
    std::string default_value = defaults.empty() ? std::string() : defaults.front();
    OptionSpec s{k.name, type, std::move(default_value), k.range, k.help, repeatable, std::move(set), std::move(get)};
    s.section = k.section;
    s.sample = sample;
    return s;
}

// string_option - free text checked by a validator ("" from check = fine).
OptionSpec string_option(const Key& k, std::string Config::*field, Check check) {
    return spec(
        k, OptionType::String,
        [field, check](Config& c, std::string_view v) {
            if (std::string why = check(v); !why.empty()) return why;
            c.*field = std::string(v);
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{c.*field}; });
}

// uint_option - a decimal number within the declared range.
OptionSpec uint_option(const Key& k, unsigned Config::*field) {
    auto [lo, hi] = bounds<std::uint64_t>(k.name, k.range, [](std::string_view t) { return parse_digits(t); });
    if (hi > std::numeric_limits<unsigned>::max()) throw std::logic_error("schema: range too wide");
    return spec(
        k, OptionType::Uint,
        [field, lo = lo, hi = hi, range = k.range](Config& c, std::string_view v) {
            auto n = parse_digits(v);
            if (!n) return "'" + std::string(v) + "' is not a number";
            if (*n < lo || *n > hi) return out_of_range(v, range);
            c.*field = static_cast<unsigned>(*n);
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{std::to_string(c.*field)}; });
}

// format_octal - a file mode as "0660".
std::string format_octal(unsigned mode) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", mode);
    return buf;
}

// octal_option - a file mode, octal digits (the leading 0 is optional).
OptionSpec octal_option(const Key& k, unsigned Config::*field) {
    auto [lo, hi] = bounds<std::uint64_t>(k.name, k.range, [](std::string_view t) { return parse_digits(t, 8); });
    return spec(
        k, OptionType::Octal,
        [field, lo = lo, hi = hi, range = k.range](Config& c, std::string_view v) {
            auto n = parse_digits(v, 8);
            if (!n) return "'" + std::string(v) + "' is not an octal mode (e.g. 0660)";
            if (*n < lo || *n > hi) return out_of_range(v, range);
            c.*field = static_cast<unsigned>(*n);
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{format_octal(c.*field)}; });
}

// size_option - a byte count with an optional K, M or G suffix.
OptionSpec size_option(const Key& k, std::uint64_t Config::*field) {
    auto [lo, hi] = bounds<std::uint64_t>(k.name, k.range, [](std::string_view t) { return parse_size(t); });
    return spec(
        k, OptionType::Size,
        [field, lo = lo, hi = hi, range = k.range](Config& c, std::string_view v) {
            auto n = parse_size(v);
            if (!n) return "'" + std::string(v) + "' is not a size (e.g. 4096, 512K, 25M, 1G)";
            if (*n < lo || *n > hi) return out_of_range(v, range);
            c.*field = *n;
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{format_size(c.*field)}; });
}

// duration_option - a time span; stored as milliseconds.
OptionSpec duration_option(const Key& k, std::chrono::milliseconds Config::*field) {
    auto [lo, hi] =
        bounds<std::chrono::milliseconds>(k.name, k.range, [](std::string_view t) { return parse_duration(t); });
    return spec(
        k, OptionType::Duration,
        [field, lo = lo, hi = hi, range = k.range](Config& c, std::string_view v) {
            auto d = parse_duration(v);
            if (!d) return "'" + std::string(v) + "' is not a duration (e.g. 500ms, 10s, 2m)";
            if (*d < lo || *d > hi) return out_of_range(v, range);
            c.*field = *d;
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{format_duration(c.*field)}; });
}

// seconds_option - a time span stored as whole seconds (libmilter's unit).
OptionSpec seconds_option(const Key& k, unsigned Config::*field) {
    auto [lo, hi] =
        bounds<std::chrono::milliseconds>(k.name, k.range, [](std::string_view t) { return parse_duration(t); });
    return spec(
        k, OptionType::Duration,
        [field, lo = lo, hi = hi, range = k.range](Config& c, std::string_view v) {
            auto d = parse_duration(v);
            if (!d) return "'" + std::string(v) + "' is not a duration (e.g. 30s, 5m)";
            if (*d < lo || *d > hi) return out_of_range(v, range);
            if (d->count() % 1000 != 0) return "'" + std::string(v) + "' is not a whole number of seconds";
            c.*field = static_cast<unsigned>(d->count() / 1000);
            return std::string();
        },
        [field](const Config& c) {
            return std::vector<std::string>{format_duration(std::chrono::seconds(c.*field))};
        });
}

// bool_option - yes/no and its usual synonyms; printed as yes or no.
OptionSpec bool_option(const Key& k, bool Config::*field) {
    return spec(
        k, OptionType::Bool,
        [field](Config& c, std::string_view v) {
            auto b = parse_bool(v);
            if (!b) return "'" + std::string(v) + "' is not yes or no";
            c.*field = *b;
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{c.*field ? "yes" : "no"}; });
}

// match_word - the range's own spelling of v (case-insensitive), or "".
std::string_view match_word(std::string_view range, std::string_view v) {
    for (std::string_view w : words(range))
        if (iequals(w, v)) return w;
    return {};
}

// enum_option - one word out of the range, stored as spelled in the range.
OptionSpec enum_option(const Key& k, std::string Config::*field) {
    return spec(
        k, OptionType::Enum,
        [field, range = k.range](Config& c, std::string_view v) {
            std::string_view w = match_word(range, v);
            if (w.empty()) return "'" + std::string(v) + "' is not one of " + std::string(range);
            c.*field = std::string(w);
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{c.*field}; });
}

// action_option - a policy action, restricted to the words of the range.
OptionSpec action_option(const Key& k, Action Config::*field) {
    for (std::string_view w : words(k.range))
        if (!parse_action(w)) throw std::logic_error("schema: bad action in range of " + std::string(k.name));
    return spec(
        k, OptionType::Enum,
        [field, range = k.range](Config& c, std::string_view v) {
            std::string_view w = match_word(range, v);
            if (w.empty()) return "'" + std::string(v) + "' is not one of " + std::string(range);
            c.*field = *parse_action(w);
            return std::string();
        },
        [field](const Config& c) { return std::vector<std::string>{to_string(c.*field)}; });
}

// uri_option - a repeatable scanner address, kept in canonical form so
// the same server written two ways is caught as a duplicate.
OptionSpec uri_option(const Key& k, std::vector<std::string> Config::*field, std::string_view sample) {
    return spec(
        k, OptionType::Uri,
        [field](Config& c, std::string_view v) {
            std::string why;
            auto server = parse_server_spec(v, &why);
            if (!server) return why;
            const std::string uri = server->uri.str();
            auto& list = c.*field;
            for (const std::string& other : list)
                if (other == uri || other.rfind(uri + " ", 0) == 0) return uri + " is listed twice";
            list.push_back(server->str());
            return std::string();
        },
        [field](const Config& c) { return c.*field; }, true, sample);
}

// ListNormalizer - checks one list entry: its stored form, or "" and a reason.
using ListNormalizer = std::string (*)(std::string_view, std::string*);

// list_option - blank- or comma-separated entries on one line, each
// checked (and normalised); an entry given twice counts once. Printed as one line of all entries;
// "" is the empty list.
OptionSpec list_option(const Key& k, std::vector<std::string> Config::*field, ListNormalizer normalize,
                       std::size_t min_items = 0, std::size_t max_items = 1000) {
    return spec(
        k, OptionType::List,
        [field, normalize, min_items, max_items](Config& c, std::string_view v) {
            std::vector<std::string> add;
            std::size_t i = 0;
            while (i < v.size()) {
                while (i < v.size() && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) ++i;
                std::size_t start = i;
                while (i < v.size() && v[i] != ' ' && v[i] != '\t' && v[i] != ',') ++i;
                if (i == start) break;
                std::string why;
                std::string entry = normalize(v.substr(start, i - start), &why);
                if (entry.empty()) return why;
                add.push_back(std::move(entry));
            }
            std::vector<std::string> list;
            for (auto& e : add)
                if (std::find(list.begin(), list.end(), e) == list.end()) list.push_back(std::move(e));
            if (list.size() > max_items) return "more than " + std::to_string(max_items) + " entries";
            if (list.size() < min_items) return std::string("at least one entry is needed");
            c.*field = std::move(list);
            return std::string();
        },
        [field](const Config& c) {
            std::string joined;
            for (const std::string& e : c.*field) joined += (joined.empty() ? "" : " ") + e;
            return std::vector<std::string>{joined};
        });
}

// cidr_text - a SkipClientNetworks entry, checked and kept as written.
std::string cidr_text(std::string_view v, std::string* error) {
    return parse_cidr(v, error) ? std::string(v) : std::string();
}

// --- value checks for string keys -------------------------------------

// check_socket - libmilter socket syntax, with a port or path we can use.
std::string check_socket(std::string_view v) {
    std::string why;
    return parse_milter_socket(v, &why) ? std::string() : why;
}

// check_abs_path - a required absolute path: the daemon's cwd is not fixed.
std::string check_abs_path(std::string_view v) {
    if (v.empty() || v.front() != '/') return "'" + std::string(v) + "' is not an absolute path";
    return {};
}

// check_abs_path_or_empty - an absolute path, or "" for none.
std::string check_abs_path_or_empty(std::string_view v) { return v.empty() ? std::string() : check_abs_path(v); }

// check_cipher_list - OpenSSL cipher-list characters only, bounded.
std::string check_cipher_list(std::string_view v) {
    bool ok = v.size() <= 1000 && std::all_of(v.begin(), v.end(), [](char c) {
                  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         std::string_view(":+!@=_.-,").find(c) != std::string_view::npos;
              });
    return ok ? std::string() : "'" + std::string(v) + "' is not an OpenSSL cipher list";
}

// check_account - a user or group name (POSIX portable set), or "".
std::string check_account(std::string_view v) {
    if (v.empty()) return {};
    bool ok = v.size() <= 32 && v.front() != '-' &&
              std::all_of(v.begin(), v.end(), [](char c) {
                  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                         c == '_' || c == '-';
              });
    return ok ? std::string() : "'" + std::string(v) + "' is not a valid user or group name";
}

// check_hostname - a DNS name or "": it goes verbatim into a mail header.
std::string check_hostname(std::string_view v) {
    if (v.empty()) return {};
    std::string bad = "'" + std::string(v) + "' is not a valid host name";
    if (v.size() > 253 || v.front() == '.' || v.back() == '.' || v.find("..") != std::string_view::npos) return bad;
    std::size_t label = 0;
    for (char c : v) {
        if (c == '.') {
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > 63) return bad;
    }
    return {};
}

// check_template - the fields of a template (policy/template.hpp).
std::string check_template(std::string_view v) { return template_error(v); }

// check_address_or_empty - local@domain, printable ASCII without blanks,
// brackets, quotes or commas: it becomes an envelope recipient.
std::string check_address_or_empty(std::string_view v) {
    if (v.empty()) return {};
    std::size_t at = v.rfind('@');
    bool ok = v.size() <= 254 && at != std::string_view::npos && at > 0 && at + 1 < v.size() &&
              std::all_of(v.begin(), v.end(), [](char c) {
                  return c > 32 && c < 127 && c != '<' && c != '>' && c != '"' && c != ',' && c != '(' && c != ')';
              });
    return ok ? std::string() : "'" + std::string(v) + "' is not a mail address (local@domain)";
}

// normalize_address - a list entry that must be a mail address (AlertRecipients).
std::string normalize_address(std::string_view entry, std::string* error) {
    *error = check_address_or_empty(entry);
    return error->empty() ? std::string(entry) : std::string();
}

// normalize_smtp_server - a list entry that must be HOST[:PORT] (AlertSmtpServer).
std::string normalize_smtp_server(std::string_view entry, std::string* error) {
    return parse_smtp_endpoint(entry, error) ? std::string(entry) : std::string();
}

// check_command - an absolute program path, then options; no shell.
std::string check_command(std::string_view v) {
    if (v.empty() || v.front() != '/') return "'" + std::string(v) + "' does not start with an absolute path";
    bool ok = std::all_of(v.begin(), v.end(), [](char c) { return c >= 32 && c < 127; });
    return ok ? std::string() : "the command holds control characters";
}

// check_header_name - an RFC 5322 field name: printable ASCII, no colon.
std::string check_header_name(std::string_view v) {
    bool ok = !v.empty() && v.size() <= 64 &&
              std::all_of(v.begin(), v.end(), [](char c) { return c > 32 && c < 127 && c != ':'; });
    return ok ? std::string() : "'" + std::string(v) + "' is not a header field name";
}

// check_config_name - a short printable label for the token's configName.
std::string check_config_name(std::string_view v) {
    bool ok = v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char c) { return c >= 32 && c < 127 && c != '"'; });
    return ok ? std::string() : "'" + std::string(v) + "' is not a short printable name";
}

// check_listen_or_empty - ADDRESS:PORT with a numeric address, or "" for off.
std::string check_listen_or_empty(std::string_view v) {
    std::string why;
    return v.empty() || parse_listen_address(v, &why) ? std::string() : why;
}

// build - the table itself. Order = documentation order.
std::vector<OptionSpec> build() {
    constexpr std::string_view daemon = "Daemon", scanners = "Scanners", mime = "MIME and limits",
                               policy = "Policy", logging = "Logging";
    std::vector<OptionSpec> t;
    t.push_back(string_option(
        {daemon, "Socket", "unix:PATH|inet:PORT@HOST|inet6:PORT@HOST",
         "Where the milter listens for the MTA. A bare absolute path means unix:PATH; inet: without @HOST "
         "listens on all addresses. Postfix's smtpd_milters must name the same socket."},
        &Config::socket, check_socket));
    t.push_back(octal_option(
        {daemon, "SocketMode", "0-0777",
         "Permissions of a unix socket, in octal. The MTA must be able to write to it."},
        &Config::socket_mode));
    t.push_back(string_option(
        {daemon, "SocketGroup", "group name",
         "Group owning a unix socket, so the MTA's user can reach it. Empty: the primary group of User."},
        &Config::socket_group, check_account));
    t.push_back(string_option(
        {daemon, "User", "user name",
         "Unprivileged user to run as once the socket, PID file and log are open. Empty: keep the "
         "starting user (not recommended when started as root)."},
        &Config::user, check_account));
    t.push_back(string_option(
        {daemon, "PidFile", "absolute path",
         "File holding the daemon's process id. Empty: write none (e.g. under systemd)."},
        &Config::pid_file, check_abs_path_or_empty));
    t.push_back(string_option(
        {daemon, "TempDirectory", "absolute path",
         "Directory for spool files of messages larger than SpoolMemoryLimit. Files are created with mode "
         "0600 and removed when the message is done."},
        &Config::temp_directory, check_abs_path));
    t.push_back(seconds_option(
        {daemon, "MilterTimeout", "1s-24h",
         "How long libmilter waits for the MTA on a connection (smfi_settimeout), in whole seconds."},
        &Config::milter_timeout));

    t.push_back(uri_option(
        {scanners, "IcapServer", "icap://HOST[:PORT]/SERVICE|icaps://HOST[:PORT]/SERVICE [OPTION=VALUE...]",
         "An ICAP scanner, plain (icap://, port 1344) or TLS (icaps://, port 11344). Repeat the key for "
         "more servers; at least one is required. IPv6 literals go in brackets. Options after the URI: "
         "weight=1-100 (share of the load within its group, default 1), priority=1-100 (lower groups are "
         "used first; a group is used only when no server of a lower one is up; default 1), "
         "preview=auto|off (use Preview when the server offers it; off for servers that answer every "
         "preview with 204), user-agent=TEXT (sent in every request), max-connections=N (our own cap; the "
         "server's Max-Connections lowers it further; default ScanThreads)."},
        &Config::icap_servers, "icap://127.0.0.1:1344/avscan"));
    t.push_back(string_option(
        {scanners, "TlsCAFile", "absolute path",
         "PEM file of CA certificates trusted for icaps:// servers. Empty: the system default store."},
        &Config::tls_ca_file, check_abs_path_or_empty));
    t.push_back(string_option(
        {scanners, "TlsCAPath", "absolute path",
         "Directory of hashed CA certificates (c_rehash) trusted for icaps:// servers. Empty: none "
         "besides TlsCAFile and the system store."},
        &Config::tls_ca_path, check_abs_path_or_empty));
    t.push_back(bool_option(
        {scanners, "TlsVerify", "yes|no",
         "Verify the certificate and host name of icaps:// servers. Turning this off is logged as a warning "
         "at every start."},
        &Config::tls_verify));
    t.push_back(enum_option(
        {scanners, "TlsMinVersion", "1.2|1.3", "Oldest TLS protocol version accepted for icaps:// servers."},
        &Config::tls_min_version));
    t.push_back(string_option(
        {scanners, "TlsCertFile", "absolute path",
         "PEM client certificate (with its chain) for mutual TLS to icaps:// servers. Needs TlsKeyFile. "
         "Empty: no client certificate."},
        &Config::tls_cert_file, check_abs_path_or_empty));
    t.push_back(string_option(
        {scanners, "TlsKeyFile", "absolute path",
         "PEM private key of TlsCertFile. Read at start, before privileges are dropped."},
        &Config::tls_key_file, check_abs_path_or_empty));
    t.push_back(string_option(
        {scanners, "TlsCiphers", "OpenSSL cipher list",
         "TLS 1.2 cipher list in OpenSSL syntax (e.g. ECDHE+AESGCM). Empty: OpenSSL's default."},
        &Config::tls_ciphers, check_cipher_list));
    t.push_back(bool_option(
        {scanners, "TlsVerifyHostname", "yes|no",
         "Check that an icaps:// server's certificate names the host (or IP address) of its URI. The chain "
         "is still verified when this is off."},
        &Config::tls_verify_hostname));
    t.push_back(bool_option(
        {scanners, "TlsAcceptExpired", "yes|no",
         "Accept an icaps:// server certificate that has expired. Only the expiry check is skipped: the "
         "chain and host name are still verified. Logged as a warning at start; health shows Warnings "
         "while such a certificate is in use."},
        &Config::tls_accept_expired));
    t.push_back(uint_option(
        {scanners, "TlsExpiryWarningDays", "0-3650",
         "Health shows Warnings, and a warning is logged, when a server certificate expires within this "
         "many days. 0: no warning."},
        &Config::tls_expiry_warning_days));
    t.push_back(duration_option(
        {scanners, "IcapConnectTimeout", "100ms-5m",
         "Time allowed to connect to a scanner (TCP and TLS handshake) before it counts as failed."},
        &Config::connect_timeout));
    t.push_back(duration_option(
        {scanners, "IcapTimeout", "1s-1h",
         "Time allowed for each read or write on an ICAP connection before the scan counts as failed."},
        &Config::io_timeout));
    t.push_back(duration_option(
        {scanners, "ScanTimeout", "1s-1h",
         "Time allowed for one attempt at scanning one part on one scanner; a server that trickles its "
         "answer is cut off here and the attempt counts as failed. MessageScanTimeout bounds the whole "
         "message, retries included."},
        &Config::scan_timeout));
    t.push_back(duration_option(
        {scanners, "MessageScanTimeout", "1s-1h",
         "Time allowed for the scan of a whole message, from its first part entering the scan queue to its "
         "last verdict, waits in the queue and retries included. Past it the message gets OnFail. Keep it "
         "below the MTA's content timeout (Postfix milter_content_timeout, 300s by default)."},
        &Config::message_scan_timeout));
    t.push_back(uint_option(
        {scanners, "ScanRetries", "0-10",
         "How often a part whose exchange failed (connection closed or reset, timeout, server error) is "
         "tried again, each time on a newly opened connection, after a short backoff, while "
         "MessageScanTimeout allows. Retries go to another server first when there is one."},
        &Config::scan_retries));
    t.push_back(bool_option(
        {scanners, "ScannerSelfTest", "yes|no",
         "Prove that each scanner scans before trusting its answers: at start, on reload and in "
         "--check-scanners, send it the EICAR test file plain, zipped and inside a PDF-shaped file, and at the "
         "end of a MaxScanSize object (halved after each miss, down to 1 MiB); the small ones again when its "
         "ISTag changes. Until its test is done a server gets no mail. A server that misses plain EICAR is in "
         "Error and gets no mail (OnFail when no other server can scan). One that misses the zip or the PDF gets "
         "no archives or no PDF documents, and none gets parts bigger than the largest canary it flagged: such "
         "parts go to a server trusted with them, else they are unscannable (OnUnscannable), never Clean. See "
         "SCANNER SELF-TEST. no trusts every 204 and weakens the Clean claim: use it only when the scanners are "
         "proven by other means."},
        &Config::scanner_self_test));
    t.push_back(uint_option(
        {scanners, "ScanThreads", "1-256",
         "Worker threads, each holding one persistent ICAP session. Keep it at or below the servers' "
         "Max-Connections."},
        &Config::scan_threads));
    t.push_back(uint_option(
        {scanners, "MaxQueueLength", "1-1000000",
         "Scan items allowed to wait for a worker. When the queue is full, new messages get the OnFail "
         "action."},
        &Config::max_queue_length));
    t.push_back(uint_option(
        {scanners, "CircuitBreakerFailures", "1-100",
         "Consecutive failures after which a scanner is marked down. A down scanner gets no mail until an "
         "OPTIONS probe succeeds. When every scanner is down, messages get OnFail at once."},
        &Config::circuit_breaker_failures));
    t.push_back(duration_option(
        {scanners, "CircuitBreakerProbeInterval", "1s-1h",
         "How often a down scanner is probed with OPTIONS."},
        &Config::circuit_breaker_probe_interval));
    t.push_back(duration_option(
        {scanners, "HealthCheckInterval", "1s-24h",
         "How often every scanner is checked with OPTIONS while idle, refreshing health, LastHealthCheck "
         "and the definition signatures. OPTIONS are also refetched shortly before their Options-TTL ends."},
        &Config::health_check_interval));

    t.push_back(size_option(
        {mime, "MaxScanSize", "1K-4G",
         "Largest decoded part sent to a scanner. Larger parts are unscannable and get the OnUnscannable "
         "action."},
        &Config::max_scan_size));
    t.push_back(size_option(
        {mime, "SpoolMemoryLimit", "0-1G",
         "Bytes of a message kept in memory; the rest goes to a file in TempDirectory. 0 spools every "
         "message to a file."},
        &Config::spool_memory_limit));
    t.push_back(size_option(
        {mime, "SpoolMemoryTotal", "0-4G",
         "Bytes all spools together keep in memory: the messages being received and the decoded parts of "
         "those being scanned. Past it a spool goes to its file in TempDirectory at once, so many sessions "
         "with large messages cannot hold sessions times SpoolMemoryLimit in memory. 0 spools everything "
         "to files. A reload changes it for the spools that grow from then on."},
        &Config::spool_memory_total));
    t.push_back(uint_option(
        {mime, "MaxMimeDepth", "1-64",
         "Deepest MIME nesting (multiparts and attached messages) walked. A deeper message is ambiguous "
         "(OnAmbiguous): its raw copy is still scanned, so a virus in it is still found, but it is never "
         "Clean, because the scanner's own MIME parser gives up at a similar depth."},
        &Config::max_mime_depth));
    t.push_back(uint_option(
        {mime, "MaxMimeParts", "1-100000",
         "Most MIME parts walked in one message. A message with more is ambiguous (OnAmbiguous), as for "
         "MaxMimeDepth."},
        &Config::max_mime_parts));
    t.push_back(enum_option(
        {mime, "ScanWholeMessage", "never|ambiguous|always",
         "Also send the raw message as one more item (part 0), so the scanner's own MIME parser gives its "
         "reading too, as clamav-milter does. always: every message (clamd, for one, only matches some "
         "content such as a small text/html part when it reads the whole message; costs a second pass of "
         "the scanner over every message). ambiguous: only messages whose MIME readers may take apart "
         "differently (see MIME READINGS in icap-milter.conf(5)). never: only when a MIME limit stopped the "
         "walk; messages that need the scanner's reading then fail closed (OnAmbiguous). A message larger "
         "than MaxScanSize gets no part 0 (suspect ones fail closed); the decoded-text view of always is made "
         "anyway, in pieces of at most MaxScanSize."},
        &Config::scan_whole_message));

    t.push_back(action_option(
        {policy, "OnInfected", "reject|tempfail|discard|accept|hold|redirect|notify|clean",
         "What to do with a message a scanner found infected. reject answers 550 5.7.1 with RejectText; "
         "tempfail 451 4.7.1; discard accepts and drops it silently; accept delivers it, marked with "
         "X-Virus-Status: Infected and the SubjectTag; hold delivers it into the MTA's hold queue "
         "(Postfix: postqueue -p shows it with '!', postsuper -H releases it, -d deletes it), tagged; "
         "redirect delivers it only to RedirectAddress, tagged, with the original recipients in "
         "X-Icap-Milter-Original-Recipients; notify delivers NotifyTemplate in place of the whole body, "
         "tagged; clean delivers it with each infected part replaced by CleanTemplate, every other part kept "
         "byte for byte, tagged (notify where the parts cannot be located beyond doubt). See ACTIONS."},
        &Config::on_infected));
    t.push_back(action_option(
        {policy, "OnFail", "tempfail|accept|reject",
         "What to do when no scanner could give a verdict (down, timeout, queue full). tempfail makes the "
         "sender retry later, so no mail is lost or let through unscanned."},
        &Config::on_fail));
    t.push_back(action_option(
        {policy, "OnUnscannable", "accept|tempfail|reject|hold|redirect|notify",
         "What to do with a message holding parts that cannot be scanned (encrypted, too large for any "
         "scanner). accept delivers it with X-Virus-Status: Unscanned; hold, redirect and notify as for "
         "OnInfected (see ACTIONS)."},
        &Config::on_unscannable));
    t.push_back(action_option(
        {policy, "OnAmbiguous", "reject|tempfail|discard|accept|hold|redirect|notify",
         "What to do with a message whose MIME structure readers may take apart differently where not every "
         "reading can be scanned (two boundaries, conflicting headers, base64 with junk, message/partial, "
         "MIME limits; see MIME READINGS in icap-milter.conf(5)). A virus found in any reading makes it "
         "Infected instead. reject answers 550 5.6.0 with the reason: such a message stays malformed, so "
         "retrying (tempfail) only delays the bounce. accept delivers it with X-Virus-Status: Ambiguous."},
        &Config::on_ambiguous));
    t.push_back(string_option(
        {policy, "SubjectTag", "template",
         "Put in front of the Subject of delivered infected mail (accept, hold, redirect, notify, clean) and of "
         "any message held, redirected or replaced by a notice, once (not again when the Subject already starts "
         "with it). A template: see TEMPLATES. Empty: the Subject is left alone."},
        &Config::subject_tag, check_template));
    t.push_back(string_option(
        {policy, "RejectText", "template",
         "Reply text of a rejected infected message, after 550 5.7.1 (see TEMPLATES). Printable ASCII is "
         "kept, at most 400 bytes."},
        &Config::reject_text, check_template));
    t.push_back(string_option(
        {policy, "RedirectAddress", "mail address",
         "The only recipient of a message whose action is redirect (local@domain, no angle brackets). "
         "Needed when any On... key says redirect."},
        &Config::redirect_address, check_address_or_empty));
    t.push_back(string_option(
        {policy, "NotifyTemplate", "template",
         "The text that replaces the whole body for notify (see TEMPLATES); {nl} is a line break. Sent as "
         "text/plain, us-ascii 7bit or utf-8 quoted-printable as the text needs."},
        &Config::notify_template, check_template));
    t.push_back(string_option(
        {policy, "CleanTemplate", "template",
         "The text of the part put in place of each part clean removes; {files} and {viruses} name that "
         "part's file and viruses (see TEMPLATES)."},
        &Config::clean_template, check_template));
    constexpr std::string_view control = "Control";
    t.push_back(string_option(
        {control, "ControlSocket", "absolute path",
         "Unix socket on which icap-milterctl asks the running daemon for stats, health and queue, and tells "
         "it to reload or change its log level (see CONTROL SOCKET in icap-milter(8)). Created before the "
         "privilege drop (a stale one is replaced), removed at exit. A socket that cannot be created is "
         "logged as an error and the milter runs on without it. Empty: none."},
        &Config::control_socket, [](std::string_view v) -> std::string {
            // sockaddr_un holds 107 bytes of path and a NUL.
            if (v.size() > 107) return "'" + std::string(v.substr(0, 40)) + "...' is longer than a unix socket path may be (107)";
            return check_abs_path_or_empty(v);
        }));
    t.push_back(octal_option(
        {control, "ControlSocketMode", "0-0777",
         "Permissions of ControlSocket, in octal. Whoever may write to it may read the statistics, reload "
         "the configuration and change the log level."},
        &Config::control_socket_mode));
    t.push_back(string_option(
        {control, "ControlSocketGroup", "group name",
         "Group owning ControlSocket, e.g. the administrators' group. Empty: the primary group of User."},
        &Config::control_socket_group, check_account));
    constexpr std::string_view quarantine = "Quarantine";
    t.push_back(string_option(
        {quarantine, "QuarantineDirectory", "absolute path",
         "Where copies of messages are kept (see QUARANTINE): the original as received, byte for byte, "
         "plus a JSON sidecar with time, queue id, job id, client, sender, recipients, verdicts and action; "
         "files 0600, written atomically. It must exist and be writable by User. A copy that cannot be "
         "written makes the message tempfail (never lost). Empty: no copies."},
        &Config::quarantine_directory, check_abs_path_or_empty));
    t.push_back(enum_option(
        {quarantine, "QuarantineCopy", "none|infected|unscannable|all",
         "Which messages are copied into QuarantineDirectory, whatever their action: infected: Infected and "
         "Blocked ones; unscannable: those and Unscanned and Ambiguous ones; all: every message (Skipped ones, "
         "never spooled, and ones over MaxMessageSize excepted); none: none."},
        &Config::quarantine_copy));
    t.push_back(size_option(
        {quarantine, "QuarantineMaxSize", "0-4G",
         "Most bytes the quarantine may hold; the oldest copies are removed (and logged) past it. 0: no limit."},
        &Config::quarantine_max_size));
    t.push_back(duration_option(
        {quarantine, "QuarantineRetention", "1s-87600h",
         "Copies older than this are removed (and logged), at most once a minute (sooner for a short "
         "retention) when a message ends."},
        &Config::quarantine_retention));
    t.push_back(string_option(
        {quarantine, "SendmailCommand", "command line",
         "How icap-milterctl quarantine release re-injects a message: an absolute path and its options, "
         "split at blanks, run without a shell; -f SENDER -- RECIPIENTS are added."},
        &Config::sendmail_command, check_command));
    t.push_back(bool_option(
        {policy, "AddHeaders", "yes|no",
         "Add X-Virus-Scanned and X-Virus-Status headers. Copies of them arriving from outside are "
         "removed either way."},
        &Config::add_headers));
    t.push_back(string_option(
        {policy, "ReportHostname", "host name",
         "Host name shown in X-Virus-Scanned and in rejection texts. Empty: the system's host name."},
        &Config::report_hostname, check_hostname));

    constexpr std::string_view filters = "Filters";
    t.push_back(list_option(
        {filters, "BlockedExtensions", "extensions",
         "Banned attachments by file name: a message with a part whose name ends in one of these extensions "
         "is Blocked (OnBlocked), whatever the scanner says. Blank- or comma-separated on one line, "
         "case-insensitive, with or without the dot (for example: exe scr com pif bat cmd vbs js jar); an entry with a dot (tar.gz) matches the end of the name. The "
         "name is the Content-Disposition filename and the Content-Type name, RFC 2231 and RFC 2047 decoded, "
         "also of parts inside attached messages; the last extension counts (invoice.pdf.exe is an exe), after "
         "the trailing dots and blanks Windows ignores. See FILTERS AND BYPASS. Empty: none."},
        &Config::blocked_extensions, normalize_extension));
    t.push_back(list_option(
        {filters, "BlockedTypes", "content types",
         "Banned attachments by content type (type/subtype, or type/* for all of a type; for example "
         "application/x-msdownload), as "
         "BlockedExtensions. The declared type is matched, which a sender chooses; the names matter more."},
        &Config::blocked_types, normalize_type));
    t.push_back(action_option(
        {filters, "OnBlocked", "reject|tempfail|discard|accept|hold|redirect|notify|clean",
         "What to do with a Blocked message. reject answers 550 5.7.1 naming the file; accept delivers it "
         "with X-Virus-Status: Blocked; clean delivers it with each banned part replaced by CleanTemplate "
         "({viruses} reads \"a blocked file type (RULE)\"); the others as for OnInfected (see ACTIONS). A "
         "virus found in any part makes the message Infected instead (OnInfected)."},
        &Config::on_blocked));
    t.push_back(list_option(
        {filters, "ScanOnlyExtensions", "extensions",
         "IMail's ExtensionList, a weakening: when set, only parts whose file name ends in one of these "
         "extensions, and parts with no file name (bodies, the whole-message views), are sent to a scanner; "
         "any other named part is unscanned with reason \"not in ScanOnlyExtensions\", so such a message is "
         "Unscanned (OnUnscannable), never Clean. Empty: scan every part."},
        &Config::scan_only_extensions, normalize_extension));
    t.push_back(size_option(
        {filters, "MaxMessageSize", "0-4G",
         "Largest whole message (headers and body as received) examined. A larger one is not spooled past "
         "this size, nor parsed, nor scanned: it is Unscanned with reason \"message larger than "
         "MaxMessageSize\" (OnUnscannable). 0: no limit."},
        &Config::max_message_size));
    constexpr std::string_view bypass = "Bypass";
    t.push_back(list_option(
        {bypass, "SkipClientNetworks", "CIDR networks",
         "Messages from SMTP clients in these networks (IPv4 or IPv6, ADDRESS/LENGTH, a bare address is one "
         "host, for example 127.0.0.0/8 ::1/128 192.0.2.0/24; host bits beyond the length are an error; an IPv4 client seen as ::ffff:a.b.c.d matches IPv4 networks) are not scanned: they get "
         "X-Virus-Status: Skipped, never Clean. See FILTERS AND BYPASS. Empty: none."},
        &Config::skip_client_networks, cidr_text));
    t.push_back(bool_option(
        {bypass, "SkipAuthenticated", "yes|no",
         "Do not scan messages from clients that authenticated with SMTP AUTH (the MTA's {auth_authen} "
         "macro, requested at MAIL FROM); they get X-Virus-Status: Skipped."},
        &Config::skip_authenticated));
    t.push_back(list_option(
        {bypass, "SkipSenders", "address patterns",
         "Do not scan messages whose envelope sender matches: user@example.com (that address), @example.com "
         "or *@example.com (any address at that domain), example.com (that domain and its subdomains); "
         "case-insensitive. Envelope senders are easily forged: see FILTERS AND BYPASS. Empty: none."},
        &Config::skip_senders, normalize_address_pattern));
    t.push_back(list_option(
        {bypass, "SkipRecipients", "address patterns",
         "Do not scan messages whose every envelope recipient matches one of these patterns (as for "
         "SkipSenders); one recipient outside them and the message is scanned for all."},
        &Config::skip_recipients, normalize_address_pattern));

    constexpr std::string_view token = "Scan token";
    t.push_back(string_option(
        {token, "TokenSigningKey", "absolute path",
         "Ed25519 private key (PEM, from icap-milterctl keygen) used to sign a scan token into every message "
         "scanned clean. Read before the privilege drop; start fails if group or others may read it. Empty: "
         "sign nothing."},
        &Config::token_signing_key, check_abs_path_or_empty));
    t.push_back(string_option(
        {token, "TrustedKeysDirectory", "absolute path",
         "Directory of public keys (*.pem or *.pub, one per server) whose scan tokens are trusted; the own "
         "key is always trusted. A message with a valid token from one of them is not scanned again."},
        &Config::trusted_keys_directory, check_abs_path_or_empty));
    t.push_back(duration_option(
        {token, "TokenLifetime", "1m-8760h",
         "How long a signed scan token stays valid (its exp claim). Default 7 days."},
        &Config::token_lifetime));
    t.push_back(duration_option(
        {token, "TokenClockSkew", "0s-1h",
         "How far in the future a token's created time may be, for clocks that differ between servers."},
        &Config::token_clock_skew));
    t.push_back(string_option(
        {token, "TokenHeader", "header name",
         "Header carrying the scan token. Every copy is removed from a message whose token fails "
         "verification."},
        &Config::token_header, check_header_name));
    t.push_back(string_option(
        {token, "ConfigName", "printable text",
         "Name of this configuration, written into the scan token's configName claim."},
        &Config::config_name, check_config_name));

    t.push_back(string_option(
        {logging, "LogTarget", "syslog|stderr|file:PATH",
         "Where log lines go: syslog (facility mail, ident icap-milter), stderr, or file:PATH with an "
         "absolute PATH (reopened on reload)."},
        &Config::log_target, check_log_target));
    t.push_back(enum_option(
        {logging, "LogLevel", "error|warning|info|debug",
         "Least severe level logged. info logs one line per message; debug logs every step."},
        &Config::log_level));
    t.push_back(enum_option(
        {logging, "LogScanned", "infected|all",
         "Which scanned parts get a line of their own at info level (queue id, job id, file, type, size, "
         "server, verdict): infected ones, or all (Domino's \"log all attachments\"). The summary line stays one "
         "per message either way."},
        &Config::log_scanned));

    // Alerts (stats/alerts.hpp).
    constexpr std::string_view alerts = "Alerts";
    t.push_back(list_option(
        {alerts, "AlertRecipients", "addresses",
         "Who gets alert mail (see ALERTS): mail addresses separated by commas, at most 20. Empty: no "
         "alerts are sent."},
        &Config::alert_recipients, normalize_address, 0, 20));
    t.push_back(string_option(
        {alerts, "AlertSender", "mail address",
         "Envelope sender and From of alert mail. Empty: icap-milter@ followed by ReportHostname (or the "
         "system's host name). Bounces of alerts go here."},
        &Config::alert_sender, check_address_or_empty));
    t.push_back(list_option(
        {alerts, "AlertSmtpServer", "HOST:PORT[,HOST:PORT...]",
         "SMTP servers alert mail is handed to, tried in order: the primary, then up to three backups "
         "([ADDRESS]:PORT for IPv6; port 25 when left out). Plain SMTP, no authentication: a relay that "
         "accepts mail from this host. The alert goes straight there, so this milter scans it only if that "
         "server runs it, and then it is just another message."},
        &Config::alert_smtp_servers, normalize_smtp_server, 1, 4));
    t.push_back(duration_option(
        {alerts, "AlertRateLimit", "1s-24h",
         "At most one alert mail per kind (infection, scanner down, definitions updated, ...) per this "
         "interval; further events of that kind are counted and sent as one digest when it has passed. "
         "Start and stop alerts are never held; load alerts follow LoadAlertInterval."},
        &Config::alert_rate_limit));
    t.push_back(enum_option(
        {alerts, "AlertInfection", "none|each|digest",
         "Alerts for infected messages. each: a mail per infected message, within AlertRateLimit, the "
         "rest in a digest; digest: only digests, each listing the infected messages of one "
         "AlertRateLimit interval; none: no infection alerts."},
        &Config::alert_infection));
    t.push_back(uint_option(
        {alerts, "LoadThreshold", "1-1000000",
         "A load alert is sent when InScannerQueue (parts waiting for a scanner) stays above this for "
         "LoadAlertInterval."},
        &Config::load_threshold));
    t.push_back(duration_option(
        {alerts, "LoadAlertInterval", "1s-24h",
         "How long InScannerQueue must stay above LoadThreshold before a load alert, and the least time "
         "between two load alerts."},
        &Config::load_alert_interval));
    t.push_back(duration_option(
        {alerts, "DefinitionsMaxAge", "0s-8760h",
         "A definitions-stale alert is sent when a scanner's ISTag (its definition signature) has not "
         "changed for this long, and again each time this long passes. 0: no such alerts."},
        &Config::definitions_max_age));
    constexpr std::string_view monitoring = "Monitoring";
    t.push_back(string_option(
        {monitoring, "MetricsListen", "ADDRESS:PORT",
         "Where the Prometheus /metrics endpoint listens: an IPv4 address and port (127.0.0.1:9375), or an "
         "IPv6 address in brackets ([::1]:9375) where prometheus-cpp's civetweb has IPv6 (Debian 12's has "
         "not: start-up then fails saying so); empty, the default, serves no metrics. Anyone who reaches "
         "it reads the statistics, so keep it on loopback or a monitoring network. Opened at start, before "
         "the privilege drop; a change takes effect after a restart."},
        &Config::metrics_listen, check_listen_or_empty));
    return t;
}

} // namespace

// schema - the table, built once on first use (thread-safe static init).
std::span<const OptionSpec> schema() {
    static const std::vector<OptionSpec> table = build();
    return table;
}

// find_option - linear search: 26 keys, looked up only while parsing.
const OptionSpec* find_option(std::string_view name) noexcept {
    for (const OptionSpec& s : schema())
        if (s.name == name) return &s;
    return nullptr;
}

// type_name - the word the docs use for a value type.
std::string_view type_name(OptionType type) noexcept {
    switch (type) {
    case OptionType::String: return "string";
    case OptionType::Bool: return "boolean";
    case OptionType::Uint: return "number";
    case OptionType::Octal: return "octal mode";
    case OptionType::Size: return "size";
    case OptionType::Duration: return "duration";
    case OptionType::Enum: return "choice";
    case OptionType::Uri: return "ICAP URI";
    case OptionType::List: return "list";
    }
    return "?";
}

// parse_bool - the usual spellings of a switch.
std::optional<bool> parse_bool(std::string_view text) noexcept {
    for (std::string_view t : {"yes", "true", "on", "1"})
        if (iequals(text, t)) return true;
    for (std::string_view f : {"no", "false", "off", "0"})
        if (iequals(text, f)) return false;
    return std::nullopt;
}

// parse_size - digits and one optional binary suffix, overflow-checked.
std::optional<std::uint64_t> parse_size(std::string_view text) noexcept {
    if (text.empty()) return std::nullopt;
    unsigned shift = 0;
    switch (ascii_lower(text.back())) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    default: break;
    }
    if (shift) text.remove_suffix(1);
    auto n = parse_digits(text);
    if (!n || *n > (std::numeric_limits<std::uint64_t>::max() >> shift)) return std::nullopt;
    return *n << shift;
}

// parse_duration - digits and a unit (ms, s, m, h); bare = seconds.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) noexcept {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    std::string_view unit = text.substr(digits);
    std::uint64_t scale = 0;
    if (unit.empty() || iequals(unit, "s")) scale = 1000;
    else if (iequals(unit, "ms")) scale = 1;
    else if (iequals(unit, "m")) scale = 60'000;
    else if (iequals(unit, "h")) scale = 3'600'000;
    else return std::nullopt;
    auto n = parse_digits(text.substr(0, digits));
    // Bound far below overflow of milliseconds::rep; no key needs more than days.
    if (!n || *n > (std::uint64_t{1} << 40) / scale) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*n * scale));
}

// format_size - the largest unit that divides the value exactly.
std::string format_size(std::uint64_t bytes) {
    if (bytes == 0) return "0";
    for (auto [shift, suffix] : {std::pair{30u, 'G'}, std::pair{20u, 'M'}, std::pair{10u, 'K'}}) {
        std::uint64_t unit = std::uint64_t{1} << shift;
        if (bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
    }
    return std::to_string(bytes);
}

// format_duration - seconds when exact, else milliseconds. Minutes are
// not used: "300s" next to a man page saying "seconds" is the least surprise.
std::string format_duration(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

// quote_value - config-file spelling of a value, quoted only when needed.
std::string quote_value(std::string_view value) {
    bool plain = !value.empty() && value.find_first_of(" \t#\"\\") == std::string_view::npos;
    if (plain) return std::string(value);
    std::string out = "\"";
    for (char c : value) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    out += '"';
    return out;
}

} // namespace icapm
