// NAME
//   config.hpp - the typed configuration snapshot
// SUMMARY
//   A Config is immutable once loaded; connections hold a
//   std::shared_ptr<const Config>, and SIGHUP swaps in a new one.
//   Every field's default is its initialiser here, and only here; its
//   key, range and help are declared once in the schema table
//   (config/schema.cpp), which reads the default from a default Config.
#pragma once

#include "icap-milter/config/paths.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// Action - what the milter does with a message.
// Action - what happens to a message. Accept delivers it (with status
// headers), Hold delivers it into the MTA's hold queue (smfi_quarantine),
// Redirect delivers it only to RedirectAddress, Notify delivers a notice
// in place of the whole body, Clean delivers it with the infected parts
// replaced by notices.
enum class Action { Accept, Reject, Discard, Tempfail, Hold, Redirect, Notify, Clean };

// to_string - "accept", "reject", "discard", "tempfail", "hold", "redirect", "notify", "clean".
const char* to_string(Action a) noexcept;

// parse_action - the inverse of to_string; nullopt for anything else.
std::optional<Action> parse_action(std::string_view text) noexcept;

struct Config {
    // Daemon
    std::string socket = "unix:" + paths::run_directory() + "/icap-milter.sock";
    unsigned socket_mode = 0660;            // SocketMode (octal), unix sockets only
    std::string socket_group;               // SocketGroup, empty = primary group of User
    std::string user;                       // User, empty = do not change user
    std::string pid_file = paths::run_directory() + "/icap-milter.pid";
    std::string temp_directory = "/var/tmp";
    unsigned milter_timeout = 300;          // MilterTimeout, seconds (smfi_settimeout)

    // Scanners
    std::vector<std::string> icap_servers;  // IcapServer, repeatable: canonical ServerSpec text
    std::string tls_ca_file;                // TlsCAFile
    std::string tls_ca_path;                // TlsCAPath
    bool tls_verify = true;                 // TlsVerify
    std::string tls_min_version = "1.2";    // TlsMinVersion: 1.2 | 1.3
    std::string tls_cert_file;              // TlsCertFile (mutual TLS)
    std::string tls_key_file;               // TlsKeyFile
    std::string tls_ciphers;                // TlsCiphers, empty = OpenSSL default
    bool tls_verify_hostname = true;        // TlsVerifyHostname
    bool tls_accept_expired = false;        // TlsAcceptExpired
    unsigned tls_expiry_warning_days = 30;  // TlsExpiryWarningDays, 0 = none
    std::chrono::milliseconds connect_timeout{10000}; // IcapConnectTimeout
    std::chrono::milliseconds io_timeout{60000};      // IcapTimeout
    std::chrono::milliseconds scan_timeout{120000};   // ScanTimeout (one attempt, one part)
    std::chrono::milliseconds message_scan_timeout{240000}; // MessageScanTimeout (whole message)
    unsigned scan_retries = 3;              // ScanRetries (fresh-connection retries per part)
    bool scanner_self_test = true;          // ScannerSelfTest
    unsigned scan_threads = 4;              // ScanThreads 1..256
    unsigned max_queue_length = 1000;       // MaxQueueLength (scan items waiting)
    unsigned circuit_breaker_failures = 3;  // CircuitBreakerFailures
    std::chrono::milliseconds circuit_breaker_probe_interval{10000}; // CircuitBreakerProbeInterval
    std::chrono::milliseconds health_check_interval{60000};          // HealthCheckInterval

    // MIME and limits
    std::uint64_t max_scan_size = 25ull << 20;   // MaxScanSize, decoded bytes per part
    std::uint64_t spool_memory_limit = 1u << 20; // SpoolMemoryLimit
    std::uint64_t spool_memory_total = 24u << 20; // SpoolMemoryTotal
    unsigned max_mime_depth = 16;           // MaxMimeDepth
    unsigned max_mime_parts = 1000;         // MaxMimeParts
    std::string scan_whole_message = "always"; // ScanWholeMessage: never | ambiguous | always

    // Policy
    Action on_infected = Action::Reject;    // OnInfected: reject | tempfail | discard | accept | hold | redirect | notify | clean
    Action on_fail = Action::Tempfail;      // OnFail: tempfail | accept | reject
    Action on_unscannable = Action::Accept; // OnUnscannable: accept | tempfail | reject | hold | redirect | notify
    Action on_ambiguous = Action::Reject;   // OnAmbiguous: reject | tempfail | discard | accept | hold | redirect | notify
    std::string subject_tag = "[VIRUS]";    // SubjectTag (template), "" = no tag
    std::string reject_text = "Virus found: {viruses}"; // RejectText (template)
    std::string redirect_address;           // RedirectAddress, for redirect
    std::string notify_template =           // NotifyTemplate (template; {nl} is a line break)
        "This message was found to hold a virus, so its content was removed and this notice "
        "delivered in its place.{nl}{nl}Virus: {viruses}{nl}File: {files}{nl}Sender: {sender}{nl}"
        "Recipients: {recipients}{nl}Subject: {subject}{nl}Queue ID: {queue_id} ({job_id}){nl}{nl}"
        "Scanned by icap-milter on {host}, {date}.";
    std::string quarantine_directory;       // QuarantineDirectory, "" = no quarantine store
    std::string quarantine_copy = "infected"; // QuarantineCopy: none | infected | unscannable | all
    std::uint64_t quarantine_max_size = 1ull << 30; // QuarantineMaxSize, 0 = no limit
    std::chrono::milliseconds quarantine_retention{30LL * 24 * 3600 * 1000}; // QuarantineRetention
    std::string sendmail_command = "/usr/sbin/sendmail -G -i"; // SendmailCommand (quarantine release)
    std::string clean_template =            // CleanTemplate (template; per removed part)
        "The attachment \"{files}\" was removed from this message because it held {viruses}.";
    bool add_headers = true;                // AddHeaders
    std::string report_hostname;            // ReportHostname, empty = gethostname()

    // Scan token
    std::string token_signing_key;          // TokenSigningKey, Ed25519 PEM; empty = sign nothing
    std::string trusted_keys_directory;     // TrustedKeysDirectory, one public PEM per server
    std::chrono::milliseconds token_lifetime{7 * 24 * 3600 * 1000LL}; // TokenLifetime
    std::chrono::milliseconds token_clock_skew{300000}; // TokenClockSkew
    std::string token_header = "X-Scan-Token"; // TokenHeader
    std::string config_name = "default";    // ConfigName, the token's configName claim

    // Logging
    std::string log_target = "syslog";      // LogTarget: syslog | stderr | file:PATH
    std::string log_level = "info";         // LogLevel: error | warning | info | debug

    // Alerts (stats/alerts.hpp): mail to the administrator
    std::vector<std::string> alert_recipients;               // AlertRecipients, empty = no alerts
    std::string alert_sender;                                // AlertSender, empty = icap-milter@HOST
    std::vector<std::string> alert_smtp_servers{"127.0.0.1:25"}; // AlertSmtpServer: primary, then backups
    std::chrono::milliseconds alert_rate_limit{600000};      // AlertRateLimit, per kind
    std::string alert_infection = "each";                    // AlertInfection: none | each | digest
    unsigned load_threshold = 100;                           // LoadThreshold (InScannerQueue)
    std::chrono::milliseconds load_alert_interval{300000};   // LoadAlertInterval
    std::chrono::milliseconds definitions_max_age{48LL * 3600 * 1000}; // DefinitionsMaxAge, 0 = off
    // Monitoring (Prometheus)
    std::string metrics_listen;             // MetricsListen: ADDRESS:PORT of /metrics; empty = off
    // Control socket (icap-milterctl stats|health|queue|reload|loglevel)
    std::string control_socket = paths::run_directory() + "/control"; // ControlSocket, "" = none
    unsigned control_socket_mode = 0660;    // ControlSocketMode (octal)
    std::string control_socket_group;       // ControlSocketGroup, empty = primary group of User
    // Filters, bypass lists and per-part logging (issue 12 items 4-6;
    // see FILTERS AND BYPASS in icap-milter.conf(5)).
    std::string log_scanned = "infected";   // LogScanned: infected | all (info line per part)
    std::vector<std::string> blocked_extensions; // BlockedExtensions, lower case, without the dot
    std::vector<std::string> blocked_types; // BlockedTypes, "type/subtype" or "type/*", lower case
    Action on_blocked = Action::Reject;     // OnBlocked: reject | tempfail | discard | accept | hold | redirect | notify | clean
    std::vector<std::string> scan_only_extensions; // ScanOnlyExtensions, empty = scan every part
    std::uint64_t max_message_size = 0;     // MaxMessageSize, 0 = no limit
    std::vector<std::string> skip_client_networks; // SkipClientNetworks, CIDR text as validated
    bool skip_authenticated = false;        // SkipAuthenticated ({auth_authen} set)
    std::vector<std::string> skip_senders;  // SkipSenders, address patterns (lower case)
    std::vector<std::string> skip_recipients; // SkipRecipients, address patterns (lower case)

    // operator== - field-wise; used by reload (did anything change?) and tests.
    bool operator==(const Config&) const = default;
};

// ConfigError - one problem found in a config file.
struct ConfigError {
    std::string file;
    unsigned line = 0;     // 0 = not tied to a line (e.g. a missing required key)
    std::string reason;
    // str - "file:line: reason".
    std::string str() const;
};

// load_config - parse and validate a file. Returns nullptr and fills
// errors (every problem, not only the first) when anything is wrong.
std::shared_ptr<const Config> load_config(const std::string& path, std::vector<ConfigError>& errors);

// parse_config_text - the same for text already in memory (tests).
std::shared_ptr<const Config> parse_config_text(const std::string& text, const std::string& name,
                                                std::vector<ConfigError>& errors);

// dump_config - "Key value" lines for every key, in schema order. The
// output parses back to an equal Config; dump_config(Config{}) prints
// the built-in defaults (a repeatable key without values becomes a comment).
std::string dump_config(const Config& config);

// MilterSocket - the Socket key, taken apart (libmilter's own syntax).
struct MilterSocket {
    enum class Kind { Unix, Inet, Inet6 };
    Kind kind = Kind::Unix;
    std::string path;        // Unix: absolute path of the socket
    std::string host;        // Inet/Inet6: empty = all addresses
    std::uint16_t port = 0;  // Inet/Inet6: 1-65535
};

// parse_milter_socket - "unix:PATH", "local:PATH", a bare absolute path,
// "inet:PORT[@HOST]" or "inet6:PORT[@HOST]"; nullopt and *error on failure.
std::optional<MilterSocket> parse_milter_socket(std::string_view text, std::string* error);

} // namespace icapm
