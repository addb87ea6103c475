// NAME
//   test_config.cpp - unit tests of the schema, the config parser and dump_config
// SUMMARY
//   Table-driven: each row is one config line and what it must produce
//   (a field value, or an error on the right line). Golden files under
//   tests/data/config/: each NAME.conf is loaded and the result (the
//   dump, or the errors with the directory replaced by "DIR") must equal
//   NAME.ref. Set ICAPM_UPDATE_GOLDEN=1 to rewrite the .ref files.
#include "icap-milter/config/config.hpp"
#include "icap-milter/config/paths.hpp"
#include "icap-milter/config/schema.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

using namespace icapm;
using namespace std::chrono_literals;

namespace {

const std::string server_line = "IcapServer icap://127.0.0.1/avscan\n";

// parse - text with errors returned alongside.
std::shared_ptr<const Config> parse(const std::string& text, std::vector<ConfigError>& errors) {
    return parse_config_text(text, "test.conf", errors);
}

// all_errors - every error as one string, for failure messages.
std::string all_errors(const std::vector<ConfigError>& errors) {
    std::string out;
    for (const auto& e : errors) out += e.str() + "\n";
    return out;
}

// slurp - a whole file.
std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// replace_all - every occurrence of from in s by to.
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
    for (std::size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
        s.replace(pos, from.size(), to);
    return s;
}

} // namespace

TEST_CASE("config: schema table is well formed") {
    std::set<std::string_view> names;
    for (const OptionSpec& s : schema()) {
        CAPTURE(s.name);
        CHECK(names.insert(s.name).second);
        REQUIRE(!s.name.empty());
        CHECK(s.name.front() >= 'A');
        CHECK(s.name.front() <= 'Z');
        CHECK(!s.help.empty());
        CHECK(!s.range.empty());
        CHECK(!s.section.empty());
        CHECK(s.set);
        CHECK(s.get);
        CHECK(find_option(s.name) == &s);
    }
    CHECK(schema().size() == 81);
    CHECK(find_option("scanthreads") == nullptr);  // keys are case-sensitive
    CHECK(find_option("Nope") == nullptr);
}

TEST_CASE("config: schema defaults equal Config's initialisers") {
    // The schema's default text is what the docs show; Config{} is what the
    // program uses. They are declared apart, so this test ties them.
    const Config defaults;
    for (const OptionSpec& s : schema()) {
        CAPTURE(s.name);
        auto values = s.get(defaults);
        if (s.repeatable) {
            CHECK(values.empty());
            CHECK(s.default_value.empty());
            continue;
        }
        REQUIRE(values.size() == 1);
        CHECK(values[0] == s.default_value);
        Config c;
        CHECK(s.set(c, s.default_value) == "");
        CHECK(c == defaults);
    }
}

TEST_CASE("config: good values of every type") {
    struct Case {
        std::string line;
        std::function<bool(const Config&)> check;
    };
    const Case cases[] = {
        // String keys with validators
        {"Socket unix:/run/x.sock", [](const Config& c) { return c.socket == "unix:/run/x.sock"; }},
        {"Socket /run/x.sock", [](const Config& c) { return c.socket == "/run/x.sock"; }},
        {"Socket local:/run/x.sock", [](const Config& c) { return c.socket == "local:/run/x.sock"; }},
        {"Socket inet:8891@127.0.0.1", [](const Config& c) { return c.socket == "inet:8891@127.0.0.1"; }},
        {"Socket inet:8891", [](const Config& c) { return c.socket == "inet:8891"; }},
        {"Socket inet6:65535@::1", [](const Config& c) { return c.socket == "inet6:65535@::1"; }},
        {"SocketGroup postfix", [](const Config& c) { return c.socket_group == "postfix"; }},
        {"SocketGroup \"\"", [](const Config& c) { return c.socket_group.empty(); }},
        {"User icap-milter", [](const Config& c) { return c.user == "icap-milter"; }},
        {"User _icap.m1", [](const Config& c) { return c.user == "_icap.m1"; }},
        {"PidFile /run/p.pid", [](const Config& c) { return c.pid_file == "/run/p.pid"; }},
        {"PidFile \"\"", [](const Config& c) { return c.pid_file.empty(); }},
        {"TempDirectory /var/spool/icap", [](const Config& c) { return c.temp_directory == "/var/spool/icap"; }},
        {"TlsCAFile /etc/ssl/ca.pem", [](const Config& c) { return c.tls_ca_file == "/etc/ssl/ca.pem"; }},
        {"TlsCAPath /etc/ssl/certs", [](const Config& c) { return c.tls_ca_path == "/etc/ssl/certs"; }},
        {"ReportHostname mx1.example.org", [](const Config& c) { return c.report_hostname == "mx1.example.org"; }},
        {"LogTarget stderr", [](const Config& c) { return c.log_target == "stderr"; }},
        {"LogTarget file:/var/log/im.log", [](const Config& c) { return c.log_target == "file:/var/log/im.log"; }},
        // Octal
        {"SocketMode 0600", [](const Config& c) { return c.socket_mode == 0600; }},
        {"SocketMode 666", [](const Config& c) { return c.socket_mode == 0666; }},
        {"SocketMode 0", [](const Config& c) { return c.socket_mode == 0; }},
        {"SocketMode 0777", [](const Config& c) { return c.socket_mode == 0777; }},
        // Durations
        {"MilterTimeout 30", [](const Config& c) { return c.milter_timeout == 30; }},
        {"MilterTimeout 2m", [](const Config& c) { return c.milter_timeout == 120; }},
        {"MilterTimeout 1h", [](const Config& c) { return c.milter_timeout == 3600; }},
        {"MilterTimeout 24h", [](const Config& c) { return c.milter_timeout == 86400; }},
        {"MilterTimeout 2000ms", [](const Config& c) { return c.milter_timeout == 2; }},
        {"IcapConnectTimeout 500ms", [](const Config& c) { return c.connect_timeout == 500ms; }},
        {"IcapConnectTimeout 100ms", [](const Config& c) { return c.connect_timeout == 100ms; }},
        {"IcapConnectTimeout 5m", [](const Config& c) { return c.connect_timeout == 5min; }},
        {"IcapTimeout 10s", [](const Config& c) { return c.io_timeout == 10s; }},
        {"IcapTimeout 2M", [](const Config& c) { return c.io_timeout == 2min; }},
        {"IcapTimeout 90", [](const Config& c) { return c.io_timeout == 90s; }},
        // Numbers
        {"ScanThreads 1", [](const Config& c) { return c.scan_threads == 1; }},
        {"ScanThreads 256", [](const Config& c) { return c.scan_threads == 256; }},
        {"MaxQueueLength 1000000", [](const Config& c) { return c.max_queue_length == 1000000; }},
        {"MaxMimeDepth 64", [](const Config& c) { return c.max_mime_depth == 64; }},
        {"MaxMimeParts 1", [](const Config& c) { return c.max_mime_parts == 1; }},
        // Sizes
        {"MaxScanSize 25M", [](const Config& c) { return c.max_scan_size == 25u << 20; }},
        {"MaxScanSize 512K", [](const Config& c) { return c.max_scan_size == 512u << 10; }},
        {"MaxScanSize 1G", [](const Config& c) { return c.max_scan_size == 1u << 30; }},
        {"MaxScanSize 4g", [](const Config& c) { return c.max_scan_size == 4ull << 30; }},
        {"MaxScanSize 1024", [](const Config& c) { return c.max_scan_size == 1024; }},
        {"SpoolMemoryLimit 0", [](const Config& c) { return c.spool_memory_limit == 0; }},
        {"SpoolMemoryLimit 65536", [](const Config& c) { return c.spool_memory_limit == 65536; }},
        {"SpoolMemoryTotal 0", [](const Config& c) { return c.spool_memory_total == 0; }},
        // Enums
        {"OnInfected discard", [](const Config& c) { return c.on_infected == Action::Discard; }},
        {"OnInfected accept", [](const Config& c) { return c.on_infected == Action::Accept; }},
        {"OnInfected REJECT", [](const Config& c) { return c.on_infected == Action::Reject; }},
        {"OnFail accept", [](const Config& c) { return c.on_fail == Action::Accept; }},
        {"OnFail reject", [](const Config& c) { return c.on_fail == Action::Reject; }},
        {"OnUnscannable tempfail", [](const Config& c) { return c.on_unscannable == Action::Tempfail; }},
        {"OnUnscannable reject", [](const Config& c) { return c.on_unscannable == Action::Reject; }},
        {"OnAmbiguous tempfail", [](const Config& c) { return c.on_ambiguous == Action::Tempfail; }},
        {"OnInfected tempfail", [](const Config& c) { return c.on_infected == Action::Tempfail; }},
        {"OnInfected hold", [](const Config& c) { return c.on_infected == Action::Hold; }},
        {"OnInfected clean", [](const Config& c) { return c.on_infected == Action::Clean; }},
        {"OnAmbiguous notify", [](const Config& c) { return c.on_ambiguous == Action::Notify; }},
        {"SubjectTag \"[{status}]\"", [](const Config& c) { return c.subject_tag == "[{status}]"; }},
        {"SubjectTag \"\"", [](const Config& c) { return c.subject_tag.empty(); }},
        {"ScanWholeMessage ambiguous", [](const Config& c) { return c.scan_whole_message == "ambiguous"; }},
        {"TlsMinVersion 1.3", [](const Config& c) { return c.tls_min_version == "1.3"; }},
        {"LogLevel debug", [](const Config& c) { return c.log_level == "debug"; }},
        {"LogLevel Warning", [](const Config& c) { return c.log_level == "warning"; }},
        // Booleans
        {"TlsVerify no", [](const Config& c) { return !c.tls_verify; }},
        {"TlsVerify off", [](const Config& c) { return !c.tls_verify; }},
        {"TlsVerify 0", [](const Config& c) { return !c.tls_verify; }},
        {"TlsVerify FALSE", [](const Config& c) { return !c.tls_verify; }},
        {"AddHeaders no", [](const Config& c) { return !c.add_headers; }},
        {"AddHeaders true", [](const Config& c) { return c.add_headers; }},
        {"AddHeaders On", [](const Config& c) { return c.add_headers; }},
        {"AddHeaders 1", [](const Config& c) { return c.add_headers; }},
        // URIs: stored canonical
        {"IcapServer icaps://av.example:11345/scan",
         [](const Config& c) {
             return c.icap_servers == std::vector<std::string>{"icap://127.0.0.1:1344/avscan",
                                                               "icaps://av.example:11345/scan"};
         }},
        {"IcapServer icap://[::1]/avscan",
         [](const Config& c) { return c.icap_servers.size() == 2 && c.icap_servers[1] == "icap://[::1]:1344/avscan"; }},
    };
    for (const Case& c : cases) {
        CAPTURE(c.line);
        std::vector<ConfigError> errors;
        auto config = parse(server_line + c.line + "\n", errors);
        INFO(all_errors(errors));
        REQUIRE(config);
        CHECK(c.check(*config));
    }
}

TEST_CASE("config: bad values are rejected on their line") {
    struct Case {
        std::string line;
        std::string reason;  // a part of the expected reason
    };
    const Case cases[] = {
        {"Socket tcp:25", "socket must be"},
        {"Socket unix:relative.sock", "absolute"},
        {"Socket relative.sock", "socket must be"},
        {"Socket unix:/" + std::string(120, 'x'), "longer than 107"},
        {"Socket inet:0@localhost", "1 to 65535"},
        {"Socket inet:65536", "1 to 65535"},
        {"Socket inet:smtp@localhost", "1 to 65535"},
        {"Socket inet:25@", "bad socket host"},
        {"Socket inet:25@host name", "bad socket host"},
        {"Socket inet6:25@[::1]", "without brackets"},
        {"SocketMode 0800", "octal"},
        {"SocketMode 01777", "out of range 0-0777"},
        {"SocketMode rw", "octal"},
        {"SocketGroup -wheel", "group name"},
        {"User \"bad user\"", "user or group name"},
        {"User r$$t", "user or group name"},
        {"PidFile run/x.pid", "absolute"},
        {"TempDirectory tmp", "absolute"},
        {"TempDirectory \"\"", "absolute"},
        {"TlsCAFile ca.pem", "absolute"},
        {"TlsCAPath certs", "absolute"},
        {"ReportHostname \"mx 1\"", "host name"},
        {"ReportHostname mx..example", "host name"},
        {"ReportHostname mx.example.", "host name"},
        {"ReportHostname " + std::string(64, 'a') + ".example", "host name"},
        {"LogTarget file:log.txt", "absolute"},
        {"LogTarget journal", "syslog, stderr or file:PATH"},
        {"MilterTimeout 0", "out of range 1s-24h"},
        {"MilterTimeout 25h", "out of range"},
        {"MilterTimeout 1500ms", "whole number of seconds"},
        {"MilterTimeout 10x", "not a duration"},
        {"MilterTimeout -5", "not a duration"},
        {"IcapConnectTimeout 99ms", "out of range 100ms-5m"},
        {"IcapConnectTimeout 1.5s", "not a duration"},
        {"IcapTimeout 999999999999999999h", "not a duration"},
        {"IcapTimeout s", "not a duration"},
        {"ScanThreads 0", "out of range 1-256"},
        {"ScanThreads 257", "out of range 1-256"},
        {"ScanThreads -1", "not a number"},
        {"ScanThreads +4", "not a number"},
        {"ScanThreads 4x", "not a number"},
        {"ScanThreads 99999999999999999999999", "not a number"},
        {"MaxQueueLength 0", "out of range"},
        {"MaxMimeDepth 65", "out of range 1-64"},
        {"MaxMimeParts 100001", "out of range"},
        {"MaxScanSize 1023", "out of range 1K-4G"},
        {"MaxScanSize 5G", "out of range"},
        {"MaxScanSize 25MB", "not a size"},
        {"MaxScanSize 99999999999999999999G", "not a size"},
        {"MaxScanSize G", "not a size"},
        {"SpoolMemoryLimit 2G", "out of range 0-1G"},
        {"OnInfected quarantine", "not one of reject|tempfail|discard|accept|hold|redirect|notify|clean"},
        {"OnUnscannable clean", "not one of accept|tempfail|reject|hold|redirect|notify"},
        {"NotifyTemplate {viruse}", "unknown field {viruse}"},
        {"QuarantineDirectory quarantine", "not an absolute path"},
        {"QuarantineCopy some", "not one of none|infected|unscannable|all"},
        {"SendmailCommand sendmail -i", "does not start with an absolute path"},
        {"SubjectTag [{virus}]", "unknown field {virus}"},
        {"RejectText Virus {", "without '}'"},
        {"RedirectAddress admin", "not a mail address"},
        {"RedirectAddress <admin@example.org>", "not a mail address"},
        {"OnInfected drop", "not one of"},
        {"OnFail discard", "not one of tempfail|accept|reject"},
        {"OnUnscannable discard", "not one of accept|tempfail|reject"},
        {"TlsMinVersion 1.1", "not one of 1.2|1.3"},
        {"LogLevel warn", "not one of error|warning|info|debug"},
        {"TlsVerify maybe", "not yes or no"},
        {"AddHeaders \"\"", "not yes or no"},
        {"IcapServer http://127.0.0.1/avscan", "bad ICAP URI"},
        {"IcapServer icap://127.0.0.1", "bad ICAP URI"},
        {"IcapServer icap://127.0.0.1:1344/avscan", "listed twice"},  // same as server_line, spelled out
        {"ScanThreads", "missing value"},
        {"ScanThreads   # no value, only a comment", "missing value"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.line);
        std::vector<ConfigError> errors;
        auto config = parse("# leading comment\n" + server_line + c.line + "\n", errors);
        CHECK_FALSE(config);
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].line == 3);
        CHECK(errors[0].file == "test.conf");
        CHECK_MESSAGE(errors[0].reason.find(c.reason) != std::string::npos, errors[0].reason);
    }
}

TEST_CASE("config: unknown keys, with suggestions") {
    struct Case {
        std::string line;
        std::string reason;
    };
    const Case cases[] = {
        {"scanthreads 4", "unknown key 'scanthreads' (did you mean ScanThreads?)"},
        {"SCANTHREADS 4", "unknown key 'SCANTHREADS' (did you mean ScanThreads?)"},
        {"ScanThread 4", "unknown key 'ScanThread' (did you mean ScanThreads?)"},
        {"IcapSever icap://h/x", "unknown key 'IcapSever' (did you mean IcapServer?)"},
        {"Frobnicate yes", "unknown key 'Frobnicate'"},
        {"Scan-Threads 4", "is not a key"},
        {"\"ScanThreads\" 4", "is not a key"},
        {"Key\xff value", "'Key\\xFF' is not a key"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.line);
        std::vector<ConfigError> errors;
        CHECK_FALSE(parse(server_line + c.line + "\n", errors));
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].line == 2);
        CHECK_MESSAGE(errors[0].reason.find(c.reason) != std::string::npos, errors[0].reason);
    }
}

TEST_CASE("config: duplicate keys") {
    std::vector<ConfigError> errors;
    CHECK_FALSE(parse(server_line + "ScanThreads 4\n\nScanThreads 8\n", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].str() == "test.conf:4: ScanThreads given twice (first on line 2)");

    // A bad first value still counts as the key being given.
    CHECK_FALSE(parse(server_line + "ScanThreads 0\nScanThreads 8\n", errors));
    REQUIRE(errors.size() == 2);
    CHECK(errors[1].line == 3);

    // IcapServer repeats; distinct servers are fine.
    auto config = parse(server_line + "IcapServer icap://10.0.0.2/avscan\nIcapServer icaps://10.0.0.3/avscan\n", errors);
    REQUIRE(config);
    CHECK(config->icap_servers.size() == 3);
}

TEST_CASE("config: IcapServer is required") {
    std::vector<ConfigError> errors;
    CHECK_FALSE(parse("ScanThreads 4\n", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].line == 0);
    CHECK(errors[0].str() == "test.conf: no IcapServer given; at least one is required");

    CHECK_FALSE(parse("", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].line == 0);

    // A bad IcapServer line is reported there, not a second time as missing.
    CHECK_FALSE(parse("IcapServer ftp://x/y\n", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].line == 1);
}

TEST_CASE("config: quoting, comments and line endings") {
    struct Case {
        std::string text;
        std::function<bool(const Config&)> check;
    };
    const Case cases[] = {
        {"TempDirectory \"/var/tmp/with space\"\n",
         [](const Config& c) { return c.temp_directory == "/var/tmp/with space"; }},
        {"TempDirectory \"/a\\\"b\\\\c\"\n", [](const Config& c) { return c.temp_directory == "/a\"b\\c"; }},
        {"TempDirectory \"/x#y\" # comment\n", [](const Config& c) { return c.temp_directory == "/x#y"; }},
        {"TempDirectory \"/x\"# comment right after\n", [](const Config& c) { return c.temp_directory == "/x"; }},
        {"TempDirectory /var/tmp#x\n", [](const Config& c) { return c.temp_directory == "/var/tmp#x"; }},
        {"TempDirectory /var/tmp # trailing\n", [](const Config& c) { return c.temp_directory == "/var/tmp"; }},
        {"TempDirectory /var/tmp\t#\ttab comment\n", [](const Config& c) { return c.temp_directory == "/var/tmp"; }},
        {"TempDirectory   /var/tmp   \n", [](const Config& c) { return c.temp_directory == "/var/tmp"; }},
        {"TempDirectory\t/var/tmp\n", [](const Config& c) { return c.temp_directory == "/var/tmp"; }},
        {"  \tTempDirectory /x\n", [](const Config& c) { return c.temp_directory == "/x"; }},
        {"TempDirectory /a b\n", [](const Config& c) { return c.temp_directory == "/a b"; }},
        {"User \"\"\n", [](const Config& c) { return c.user.empty(); }},
        {"ScanThreads \"8\"\n", [](const Config& c) { return c.scan_threads == 8; }},
        {"# comment\n#ScanThreads 9\n   # indented comment\n\n\t\n", [](const Config& c) { return c.scan_threads == 4; }},
        {"ScanThreads 8\r\nUser mail\r\n", [](const Config& c) { return c.scan_threads == 8 && c.user == "mail"; }},
        {"ScanThreads 8", [](const Config& c) { return c.scan_threads == 8; }},  // no final newline
        {"TempDirectory /\xc3\xa9t\xc3\xa9\n", [](const Config& c) { return c.temp_directory == "/\xc3\xa9t\xc3\xa9"; }},
    };
    for (const Case& c : cases) {
        CAPTURE(c.text);
        std::vector<ConfigError> errors;
        auto config = parse(server_line + c.text, errors);
        INFO(all_errors(errors));
        REQUIRE(config);
        CHECK(c.check(*config));
    }
}

TEST_CASE("config: malformed lines") {
    struct Case {
        std::string text;
        std::string reason;
    };
    const Case cases[] = {
        {"TempDirectory \"/x\n", "unterminated quoted value"},
        {"TempDirectory \"/x\\n\"\n", "bad escape"},
        {"TempDirectory \"/x\\\n", "bad escape"},
        {"TempDirectory \"/x\" junk\n", "unexpected text after the quoted value"},
        {"TempDirectory \"/x\"junk\n", "unexpected text after the quoted value"},
        {std::string("TempDirectory /x\0y\n", 19), "NUL byte in line"},
        {"TempDirectory /x\x01y\n", "control character \\x01 in line"},
        {"TempDirectory /x\x7f\n", "control character \\x7F in line"},
        {"TempDirectory /x\ry\n", "control character \\x0D in line"},
        {"# comment with \x1b escape\n", "control character \\x1B"},
        {"TempDirectory /" + std::string(5000, 'x') + "\n", "line longer than 4096 bytes"},
        {"# " + std::string(5000, 'x') + "\n", "line longer than 4096 bytes"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.reason);
        std::vector<ConfigError> errors;
        CHECK_FALSE(parse(server_line + c.text, errors));
        REQUIRE(errors.size() == 1);
        CHECK(errors[0].line == 2);
        CHECK_MESSAGE(errors[0].reason.find(c.reason) != std::string::npos, errors[0].reason);
    }
}

TEST_CASE("config: every error is reported, up to a cap") {
    std::vector<ConfigError> errors;
    CHECK_FALSE(parse("ScanThreads 0\nBogus 1\nIcapServer icap://h/x\nMaxScanSize huge\nTlsVerify perhaps\n", errors));
    REQUIRE(errors.size() == 4);
    CHECK(errors[0].line == 1);
    CHECK(errors[1].line == 2);
    CHECK(errors[2].line == 4);
    CHECK(errors[3].line == 5);

    std::string junk;
    for (int i = 0; i < 5000; ++i) junk += "Junk" + std::to_string(i) + " x\n";
    CHECK_FALSE(parse(junk, errors));
    CHECK(errors.size() == 101);
    CHECK(errors.back().reason == "too many errors, giving up");
    CHECK(errors.back().line == 100);
}

TEST_CASE("config: hostile input does not crash") {
    std::vector<ConfigError> errors;
    CHECK_FALSE(parse(std::string((1u << 20) + 1, 'x'), errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].reason.find("larger than") != std::string::npos);

    std::string binary;
    for (int i = 0; i < 200000; ++i) binary += static_cast<char>((i * 7919) % 256);
    CHECK_FALSE(parse(binary, errors));
    CHECK(!errors.empty());
    CHECK(errors.size() <= 101);

    CHECK_FALSE(parse(std::string(100000, '\n'), errors));  // only "missing IcapServer"
    CHECK(errors.size() == 1);
    CHECK_FALSE(parse(std::string(3000, '"'), errors));
    CHECK_FALSE(parse("\"", errors));
    CHECK_FALSE(parse("#", errors));
    CHECK_FALSE(parse(std::string(4096, ' ') + "\n", errors));  // blank, not too long
    CHECK(errors.size() == 1);
}

TEST_CASE("config: ConfigError::str") {
    CHECK((ConfigError{"/etc/x.conf", 12, "bad"}).str() == "/etc/x.conf:12: bad");
    CHECK((ConfigError{"/etc/x.conf", 0, "bad"}).str() == "/etc/x.conf: bad");
}

TEST_CASE("config: dump_config round-trips") {
    SUBCASE("defaults plus a server") {
        std::vector<ConfigError> errors;
        auto config = parse(server_line, errors);
        REQUIRE(config);
        auto again = parse(dump_config(*config), errors);
        INFO(all_errors(errors));
        REQUIRE(again);
        CHECK(*again == *config);
    }
    SUBCASE("every key changed, awkward strings included") {
        const std::string text =
            "Socket \"/run/my milter/s#1.sock\"\n"
            "SocketMode 0600\n"
            "SocketGroup postfix\n"
            "User icapm\n"
            "PidFile \"\"\n"
            "TempDirectory \"/tmp/a \\\"quoted\\\" \\\\ dir\"\n"
            "MilterTimeout 10m\n"
            "IcapServer icap://10.0.0.1/avscan\n"
            "IcapServer icaps://[2001:db8::1]:2000/scan?mode=full\n"
            "IcapServer icap://av.example/x#y\n"
            "IcapServer icaps://av2.example/avscan  priority=2 weight=3 preview=off user-agent=Foo/1 max-connections=8\n"
            "TlsCAFile /etc/ssl/ca.pem\n"
            "TlsCAPath /etc/ssl/certs\n"
            "TlsVerify off\n"
            "TlsMinVersion 1.3\n"
            "TlsCertFile /etc/icap-milter/client.pem\n"
            "TlsKeyFile /etc/icap-milter/client.key\n"
            "TlsCiphers ECDHE+AESGCM:!aNULL\n"
            "TlsVerifyHostname no\n"
            "TlsAcceptExpired yes\n"
            "TlsExpiryWarningDays 7\n"
            "IcapConnectTimeout 1500ms\n"
            "IcapTimeout 2m\n"
            "ScanTimeout 90s\n"
            "MessageScanTimeout 100s\n"
            "ScanRetries 5\n"
            "ScannerSelfTest no\n"
            "ScanThreads 16\n"
            "MaxQueueLength 50\n"
            "CircuitBreakerFailures 5\n"
            "CircuitBreakerProbeInterval 30s\n"
            "HealthCheckInterval 5m\n"
            "MaxScanSize 1000000\n"
            "SpoolMemoryLimit 0\n"
            "SpoolMemoryTotal 8M\n"
            "MaxMimeDepth 8\n"
            "MaxMimeParts 20\n"
            "OnInfected discard\n"
            "OnFail accept\n"
            "OnUnscannable reject\n"
            "OnAmbiguous accept\n"
            "SubjectTag \"** VIRUS **\"\n"
            "RejectText \"Rejected: {viruses}\"\n"
            "RedirectAddress quarantine@example.org\n"
            "NotifyTemplate \"Removed: {viruses}{nl}Ask {host}.\"\n"
            "CleanTemplate \"{files}: removed\"\n"
            "ControlSocket /run/icap-milter/ctl.sock\n"
            "ControlSocketMode 0600\n"
            "ControlSocketGroup adm\n"
            "QuarantineDirectory /var/lib/icap-milter/quarantine\n"
            "QuarantineCopy all\n"
            "QuarantineMaxSize 2G\n"
            "QuarantineRetention 48h\n"
            "SendmailCommand \"/usr/sbin/sendmail -G -i -C /etc/postfix-out\"\n"
            "ScanWholeMessage never\n"
            "AddHeaders no\n"
            "ReportHostname mx.example.org\n"
            "TokenSigningKey /etc/icap-milter/token.key\n"
            "TrustedKeysDirectory /etc/icap-milter/trusted\n"
            "TokenLifetime 24h\n"
            "TokenClockSkew 30s\n"
            "TokenHeader X-Token\n"
            "ConfigName \"mx pool 1\"\n"
            "LogTarget \"file:/var/log/icap milter.log\"\n"
            "LogLevel debug\n"
            "AlertRecipients \"postmaster@example.org, av-team@example.org\"\n"
            "AlertSender icap-milter@mx.example.org\n"
            "AlertSmtpServer \"127.0.0.1:2525, [2001:db8::25]:25\"\n"
            "AlertRateLimit 30m\n"
            "AlertInfection digest\n"
            "LoadThreshold 500\n"
            "LoadAlertInterval 1m\n"
            "DefinitionsMaxAge 0s\n"
            "MetricsListen [::1]:9375\n"
            "LogScanned all\n"
            "BlockedExtensions \"exe, scr\"\n"
            "BlockedTypes application/x-msdownload\n"
            "OnBlocked hold\n"
            "ScanOnlyExtensions \"doc zip\"\n"
            "MaxMessageSize 50M\n"
            "SkipClientNetworks \"127.0.0.0/8 ::1/128\"\n"
            "SkipAuthenticated yes\n"
            "SkipSenders @example.org\n"
            "SkipRecipients \"postmaster@example.org example.net\"\n";

        std::vector<ConfigError> errors;
        auto config = parse(text, errors);
        INFO(all_errors(errors));
        REQUIRE(config);
        // Each key really differs from its default, so the round trip tests something.
        const Config defaults;
        for (const OptionSpec& s : schema()) {
            CAPTURE(s.name);
            CHECK(s.get(*config) != s.get(defaults));
        }
        std::string dump = dump_config(*config);
        auto again = parse(dump, errors);
        INFO(dump);
        INFO(all_errors(errors));
        REQUIRE(again);
        CHECK(*again == *config);
        CHECK(dump_config(*again) == dump);  // a fixed point
        CHECK(dump.find("PidFile \"\"\n") != std::string::npos);
        CHECK(dump.find("MilterTimeout 600s\n") != std::string::npos);
        CHECK(dump.find("IcapConnectTimeout 1500ms\n") != std::string::npos);
        CHECK(dump.find("MaxScanSize 1000000\n") != std::string::npos);
        CHECK(dump.find("IcapServer icaps://[2001:db8::1]:2000/scan?mode=full\n") != std::string::npos);
        CHECK(dump.find("IcapServer \"icap://av.example:1344/x#y\"\n") != std::string::npos);
        CHECK(dump.find("IcapServer \"icaps://av2.example:11344/avscan weight=3 priority=2 preview=off "
                        "user-agent=Foo/1 max-connections=8\"\n") != std::string::npos);
    }
    SUBCASE("built-in defaults: every key, in schema order") {
        std::string dump = dump_config(Config{});
        std::size_t pos = 0;
        for (const OptionSpec& s : schema()) {
            CAPTURE(s.name);
            std::string line = s.repeatable ? "# " + std::string(s.name) + " (none set)\n"
                                            : std::string(s.name) + " " + quote_value(s.default_value) + "\n";
            auto at = dump.find(line, pos);
            REQUIRE(at != std::string::npos);
            pos = at + line.size();
        }
        CHECK(dump.find("User \"\"\n") != std::string::npos);
        std::vector<ConfigError> errors;
        auto config = parse(dump + server_line, errors);
        INFO(all_errors(errors));
        REQUIRE(config);
        Config expected;
        expected.icap_servers = {"icap://127.0.0.1:1344/avscan"};
        CHECK(*config == expected);
    }
}

TEST_CASE("config: value spellings") {
    CHECK(parse_size("0") == 0u);
    CHECK(parse_size("1k") == 1024u);
    CHECK(parse_size("17179869183G") == 17179869183ull << 30);
    CHECK_FALSE(parse_size("17179869184G"));  // would overflow 64 bits
    CHECK_FALSE(parse_size(""));
    CHECK_FALSE(parse_size("K"));
    CHECK_FALSE(parse_size("1T"));
    CHECK_FALSE(parse_size(" 1K"));
    CHECK(format_size(0) == "0");
    CHECK(format_size(1023) == "1023");
    CHECK(format_size(1024) == "1K");
    CHECK(format_size(3ull << 30) == "3G");
    CHECK(format_size((1ull << 20) + 1024) == "1025K");

    CHECK(parse_duration("0") == 0ms);
    CHECK(parse_duration("15") == 15s);
    CHECK(parse_duration("250MS") == 250ms);
    CHECK(parse_duration("3h") == 3h);
    CHECK_FALSE(parse_duration(""));
    CHECK_FALSE(parse_duration("ms"));
    CHECK_FALSE(parse_duration("1d"));
    CHECK_FALSE(parse_duration("1 s"));
    CHECK_FALSE(parse_duration("99999999999999h"));
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(120s) == "120s");
    CHECK(format_duration(0ms) == "0s");

    CHECK(parse_bool("YES") == true);
    CHECK(parse_bool("0") == false);
    CHECK_FALSE(parse_bool("y"));
    CHECK_FALSE(parse_bool(""));

    CHECK(quote_value("plain") == "plain");
    CHECK(quote_value("") == "\"\"");
    CHECK(quote_value("a b") == "\"a b\"");
    CHECK(quote_value("a\"b\\c") == "\"a\\\"b\\\\c\"");
    CHECK(quote_value("x#y") == "\"x#y\"");

    for (Action a : {Action::Accept, Action::Reject, Action::Discard, Action::Tempfail})
        CHECK(parse_action(to_string(a)) == a);
    CHECK(std::string(to_string(Action::Tempfail)) == "tempfail");
    CHECK_FALSE(parse_action("Reject"));
    CHECK_FALSE(parse_action(""));
}

TEST_CASE("config: parse_milter_socket") {
    std::string why;
    auto s = parse_milter_socket("unix:/run/a.sock", &why);
    REQUIRE(s);
    CHECK(s->kind == MilterSocket::Kind::Unix);
    CHECK(s->path == "/run/a.sock");
    s = parse_milter_socket("/run/b.sock", &why);
    REQUIRE(s);
    CHECK(s->path == "/run/b.sock");
    s = parse_milter_socket("inet:8891@127.0.0.1", &why);
    REQUIRE(s);
    CHECK(s->kind == MilterSocket::Kind::Inet);
    CHECK(s->port == 8891);
    CHECK(s->host == "127.0.0.1");
    s = parse_milter_socket("inet:1", &why);
    REQUIRE(s);
    CHECK(s->host.empty());
    s = parse_milter_socket("inet6:10025@2001:db8::5", &why);
    REQUIRE(s);
    CHECK(s->kind == MilterSocket::Kind::Inet6);
    CHECK(s->host == "2001:db8::5");
    CHECK_FALSE(parse_milter_socket("inet:@host", &why));
    CHECK_FALSE(parse_milter_socket("inet:1@a:b", &why));  // colons only for inet6
    CHECK_FALSE(parse_milter_socket("", &why));
    CHECK_FALSE(parse_milter_socket("unix:", nullptr));
}

TEST_CASE("config: load_config reads files and reports file problems") {
    std::vector<ConfigError> errors;
    auto config = load_config(TEST_DATA_DIR "/config/good-full.conf", errors);
    INFO(all_errors(errors));
    REQUIRE(config);
    CHECK(config->scan_threads == 8);

    CHECK_FALSE(load_config(TEST_DATA_DIR "/config/does-not-exist.conf", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].line == 0);
    CHECK(errors[0].reason.find("cannot open") != std::string::npos);

    CHECK_FALSE(load_config(TEST_DATA_DIR "/config", errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].reason == "not a regular file");

    CHECK_FALSE(load_config("/dev/zero", errors));  // a device would never end
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].reason == "not a regular file");
}

TEST_CASE("config: golden files") {
    // Each NAME.conf is loaded; NAME.ref holds the dump (good) or the errors (bad).
    const std::filesystem::path dir = TEST_DATA_DIR "/config";
    const bool update = std::getenv("ICAPM_UPDATE_GOLDEN") != nullptr;
    std::vector<std::filesystem::path> inputs;
    for (const auto& entry : std::filesystem::directory_iterator(dir))
        if (entry.path().extension() == ".conf") inputs.push_back(entry.path());
    std::sort(inputs.begin(), inputs.end());
    CHECK(inputs.size() >= 2);
    for (const auto& in : inputs) {
        CAPTURE(in.filename().string());
        std::vector<ConfigError> errors;
        auto config = load_config(in.string(), errors);
        std::string got;
        if (config) got = paths::templated(dump_config(*config)); // the same on every build
        for (const auto& e : errors) got += replace_all(e.str(), dir.string(), "DIR") + "\n";
        auto ref = std::filesystem::path(in).replace_extension(".ref");
        if (update) std::ofstream(ref, std::ios::binary) << got;
        CHECK(slurp(ref) == got);
        // Names say which way a file must go, so a broken parser cannot pass by flipping.
        CHECK((in.filename().string().rfind("good", 0) == 0) == static_cast<bool>(config));
    }
}

TEST_CASE("config: redirect needs RedirectAddress") {
    std::vector<ConfigError> errors;
    auto config = parse_config_text("IcapServer icap://127.0.0.1:1344/avscan\nOnInfected redirect\n", "t.conf", errors);
    CHECK_FALSE(config);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].line == 2);
    CHECK(errors[0].reason == "OnInfected redirect needs RedirectAddress");
    errors.clear();
    config = parse_config_text("IcapServer icap://127.0.0.1:1344/avscan\nOnAmbiguous redirect\n"
                               "RedirectAddress virus@example.org\n",
                               "t.conf", errors);
    REQUIRE(config);
    CHECK(config->on_ambiguous == Action::Redirect);
}
