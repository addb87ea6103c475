// NAME
//   test_log.cpp - unit tests of log setup and sanitize()
// SUMMARY
//   sanitize() cases are a table; the file target is checked by reading
//   back what was logged. The tests leave the default logger on stderr
//   at level info, close to spdlog's own default, for tests that follow.
#include "icap-milter/log/log.hpp"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace {

// TempDir - a private directory under /tmp, removed with its contents.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char tmpl[] = "/tmp/icapm-test-log-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
};

// slurp - a whole file as a string ("" if missing).
std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// RestoreLog - put logging back to stderr/info when a test ends.
struct RestoreLog {
    ~RestoreLog() { icapm::log_init("stderr", "info"); }
};

} // namespace

TEST_CASE("log: sanitize escapes and cuts") {
    struct Case {
        std::string in;
        std::size_t max;
        std::string out;
    };
    const Case cases[] = {
        {"", 256, ""},
        {"plain text <a@b.example>", 256, "plain text <a@b.example>"},
        {"a\r\nb", 256, "a\\x0D\\x0Ab"},
        {"tab\there", 256, "tab\\x09here"},
        {std::string("nul\0x", 5), 256, "nul\\x00x"},
        {"del\x7f", 256, "del\\x7F"},
        {"\xc3\xa9t\xc3\xa9", 256, "\\xC3\\xA9t\\xC3\\xA9"},
        {"\xff", 256, "\\xFF"},
        {"abcdef", 6, "abcdef"},        // exactly max_len: no cut
        {"abcdefg", 6, "abcdef..."},    // one over: cut and marked
        {"ab\ncd", 4, "ab..."},         // an escape is never split
        {"ab\ncd", 6, "ab\\x0A..."},
        {"abc", 0, "..."},
        {"backslash \\ stays", 256, "backslash \\ stays"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.in);
        CHECK(icapm::sanitize(c.in, c.max) == c.out);
    }
    CHECK(icapm::sanitize(std::string(1000, 'x')).size() == 256 + 3);
}

TEST_CASE("log: check_log_target") {
    CHECK(icapm::check_log_target("syslog").empty());
    CHECK(icapm::check_log_target("stderr").empty());
    CHECK(icapm::check_log_target("file:/var/log/icap-milter.log").empty());
    CHECK_FALSE(icapm::check_log_target("file:relative.log").empty());
    CHECK_FALSE(icapm::check_log_target("file:").empty());
    CHECK_FALSE(icapm::check_log_target("Syslog").empty());
    CHECK_FALSE(icapm::check_log_target("").empty());
    CHECK_FALSE(icapm::check_log_target("stdout").empty());
}

TEST_CASE("log: file target writes lines, level filters them") {
    RestoreLog restore;
    TempDir dir;
    auto file = dir.path / "milter.log";
    icapm::log_init("file:" + file.string(), "info");
    spdlog::info("hello {}", 42);
    spdlog::debug("hidden at info");
    spdlog::warn("careful key={}", icapm::sanitize("a\nb"));
    std::string text = slurp(file);
    CHECK(text.find("hello 42") != std::string::npos);
    CHECK(text.find("hidden at info") == std::string::npos);
    CHECK(text.find("careful key=a\\x0Ab") != std::string::npos);
    CHECK(text.find("warning") != std::string::npos);  // level word in file lines

    REQUIRE(icapm::log_set_level("debug"));
    spdlog::debug("now visible");
    CHECK(slurp(file).find("now visible") != std::string::npos);

    REQUIRE(icapm::log_set_level("error"));
    spdlog::warn("suppressed warning");
    spdlog::error("an error");
    text = slurp(file);
    CHECK(text.find("suppressed warning") == std::string::npos);
    CHECK(text.find("an error") != std::string::npos);
    CHECK_FALSE(icapm::log_set_level("verbose"));
    CHECK_FALSE(icapm::log_set_level("warn"));  // the config word is "warning"
}

TEST_CASE("log: reinit switches files and keeps the same logger") {
    RestoreLog restore;
    TempDir dir;
    auto first = dir.path / "one.log", second = dir.path / "two.log";
    icapm::log_init("file:" + first.string(), "info");
    auto logger = spdlog::default_logger();
    spdlog::info("to first");
    icapm::log_init("file:" + second.string(), "info");
    CHECK(spdlog::default_logger() == logger);  // threads holding it stay valid
    spdlog::info("to second");
    CHECK(slurp(first).find("to first") != std::string::npos);
    CHECK(slurp(first).find("to second") == std::string::npos);
    CHECK(slurp(second).find("to second") != std::string::npos);
}

TEST_CASE("log: bad target or level throws and changes nothing") {
    RestoreLog restore;
    TempDir dir;
    auto file = dir.path / "keep.log";
    icapm::log_init("file:" + file.string(), "info");
    CHECK_THROWS_AS(icapm::log_init("stdout", "info"), std::invalid_argument);
    CHECK_THROWS_AS(icapm::log_init("file:relative", "info"), std::invalid_argument);
    CHECK_THROWS_AS(icapm::log_init("stderr", "verbose"), std::invalid_argument);
    CHECK_THROWS_AS(icapm::log_init("stderr", ""), std::invalid_argument);
    // spdlog creates missing directories, but not below a regular file.
    CHECK_THROWS_AS(icapm::log_init("file:" + (file / "x.log").string(), "info"),
                    std::runtime_error);
    spdlog::info("still here");
    CHECK(slurp(file).find("still here") != std::string::npos);
}

TEST_CASE("log: syslog target initialises") {
    RestoreLog restore;
    // Nothing is logged: the test host's syslog is not ours to fill.
    CHECK_NOTHROW(icapm::log_init("syslog", "error"));
    CHECK_NOTHROW(icapm::log_init("syslog", "info"));  // reload keeps the open syslog sink
}

TEST_CASE("log: a reload that cannot reopen the same file keeps the open one") {
    RestoreLog restore;
    TempDir dir;
    auto file = dir.path / "milter.log", moved = dir.path / "milter.log.1";
    icapm::log_init("file:" + file.string(), "info");
    spdlog::info("before the reload");
    // After the privilege drop a root-owned log file cannot be reopened;
    // root can open anything, so a directory in its place stands in.
    std::filesystem::rename(file, moved);
    std::filesystem::create_directory(file);
    CHECK_NOTHROW(icapm::log_init("file:" + file.string(), "debug"));
    spdlog::debug("after the reload");  // the new level applies
    const std::string text = slurp(moved);
    CHECK(text.find("before the reload") != std::string::npos);
    CHECK(text.find("not reopened") != std::string::npos);
    CHECK(text.find("file=" + file.string()) != std::string::npos);
    CHECK(text.find("after the reload") != std::string::npos);
    // A different file that cannot be opened is still an error.
    CHECK_THROWS_AS(icapm::log_init("file:" + (moved / "x.log").string(), "info"), std::runtime_error);
}

TEST_CASE("log: sanitize_value keeps a quoted field closed") {
    CHECK(icapm::sanitize_value("a\" action=accept x=\".exe") == "a\\x22 action=accept x=\\x22.exe");
    CHECK(icapm::sanitize_value("r\xC3\xA9sum\xC3\xA9.exe") == "r\\xC3\\xA9sum\\xC3\\xA9.exe");
    CHECK(icapm::sanitize("a\"b") == "a\"b"); // plain sanitize is unchanged
    CHECK(icapm::sanitize_value(std::string(10, '"'), 9) == "\\x22\\x22...");
}
