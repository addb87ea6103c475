// NAME
//   test_filters.cpp - BlockedExtensions, BlockedTypes, ScanOnlyExtensions
// SUMMARY
//   The matchers on plain names (last and double extensions, trailing
//   dots and blanks, paths, NTFS streams, case), on names as the walker
//   decodes them from real MIME (RFC 2231, RFC 2047 encoded words, a
//   Content-Type name that differs from the filename, parts inside an
//   attached message), the config entries, and the Blocked decision.
#include "icap-milter/config/config.hpp"
#include "icap-milter/mime/walker.hpp"
#include "icap-milter/policy/filters.hpp"
#include "icap-milter/policy/policy.hpp"

#include "mime_fixtures.hpp"

#include <doctest/doctest.h>

using namespace icapm;
using namespace icapm::test;

namespace {

const std::vector<std::string> kBanned = {"exe", "scr", "com", "tar.gz"};

// attachment - a message with one base64 attachment under the given
// Content-Type and Content-Disposition parameter lines.
std::string attachment(const std::string& type_params, const std::string& disp_params) {
    return crlf("From: a@example.com\n"
                "To: b@example.com\n"
                "Subject: t\n"
                "MIME-Version: 1.0\n"
                "Content-Type: multipart/mixed; boundary=\"BB\"\n"
                "\n"
                "--BB\n"
                "Content-Type: text/plain\n"
                "\n"
                "hello\n"
                "--BB\n"
                "Content-Type: application/octet-stream" + type_params + "\n"
                "Content-Disposition: attachment" + disp_params + "\n"
                "Content-Transfer-Encoding: base64\n"
                "\n"
                "aGVsbG8K\n"
                "--BB--\n");
}

// walked - the walk of raw (in memory).
WalkResult walked(const std::string& raw) {
    auto s = spool_of(raw);
    return walk_message(*s, WalkLimits{});
}

// banned_names - the rules any item's name of raw hits.
std::vector<std::string> banned_names(const std::string& raw) {
    std::vector<std::string> out;
    for (const auto& it : walked(raw).items) {
        if (auto r = extension_rule(kBanned, it.filename)) out.push_back(it.filename + "=" + *r);
        else if (auto r2 = extension_rule(kBanned, it.type_name)) out.push_back(it.type_name + "=" + *r2);
    }
    return out;
}

} // namespace

TEST_CASE("filters: the last extension counts, double extensions included") {
    CHECK(extension_rule(kBanned, "setup.exe") == std::optional<std::string>("exe"));
    CHECK(extension_rule(kBanned, "invoice.pdf.exe") == std::optional<std::string>("exe"));
    CHECK(extension_rule(kBanned, "INVOICE.PDF.EXE") == std::optional<std::string>("exe"));
    CHECK(extension_rule(kBanned, "backup.tar.gz") == std::optional<std::string>("tar.gz"));
    CHECK_FALSE(extension_rule(kBanned, "invoice.exe.pdf"));
    CHECK_FALSE(extension_rule(kBanned, "exe"));
    CHECK_FALSE(extension_rule(kBanned, "notes.executable"));
    CHECK_FALSE(extension_rule(kBanned, "a.gz"));
    CHECK_FALSE(extension_rule(kBanned, ""));
    CHECK_FALSE(extension_rule({}, "a.exe"));
    CHECK(extension_rule(kBanned, ".exe")); // a "hidden" name is still an exe to Windows
}

TEST_CASE("filters: names as Windows reads them") {
    CHECK(windows_name("a.exe.") == "a.exe");
    CHECK(windows_name("a.exe ") == "a.exe");
    CHECK(windows_name("a.exe . .") == "a.exe");
    CHECK(windows_name("C:\\Users\\x\\A.EXE") == "a.exe");
    CHECK(windows_name("../../a.exe") == "a.exe");
    CHECK(windows_name("a.exe::$DATA") == "a.exe");
    for (const char* n : {"a.exe.", "a.exe ", "a.exe\t", "dir/a.exe", "a.ExE::$DATA", "a.scr. . "})
        CHECK_MESSAGE(extension_rule(kBanned, n), n);
    CHECK(windows_name(std::string(5000, 'a') + ".exe").size() == 1024);
    CHECK(extension_rule(kBanned, std::string(5000, 'a') + ".exe"));
}

TEST_CASE("filters: content types with wildcards") {
    const std::vector<std::string> types = {"application/x-msdownload", "video/*"};
    CHECK(type_rule(types, "application/x-msdownload") == std::optional<std::string>("application/x-msdownload"));
    CHECK(type_rule(types, "Application/X-MSDownload") == std::optional<std::string>("application/x-msdownload"));
    CHECK(type_rule(types, "video/mp4") == std::optional<std::string>("video/*"));
    CHECK_FALSE(type_rule(types, "video/"));
    CHECK_FALSE(type_rule(types, "videos/mp4"));
    CHECK_FALSE(type_rule(types, "application/x-msdownload2"));
    CHECK_FALSE(type_rule(types, "application/octet-stream"));
}

TEST_CASE("filters: config entries") {
    std::string why;
    CHECK(normalize_extension("EXE", &why) == "exe");
    CHECK(normalize_extension(".exe", &why) == "exe");
    CHECK(normalize_extension("*.Exe", &why) == "exe");
    CHECK(normalize_extension("tar.gz", &why) == "tar.gz");
    for (const char* bad : {"", ".", "*", "*.", "a/b", "e*e", "exe.", "a;b"}) {
        why.clear();
        CHECK_MESSAGE(normalize_extension(bad, &why).empty(), bad);
        CHECK_MESSAGE(!why.empty(), bad);
    }
    CHECK(normalize_type("Application/X-MSDownload", &why) == "application/x-msdownload");
    CHECK(normalize_type("video/*", &why) == "video/*");
    for (const char* bad : {"", "application", "*/*", "a/b/c", "/x", "a/", "a/b*"}) {
        why.clear();
        CHECK_MESSAGE(normalize_type(bad, &why).empty(), bad);
        CHECK_MESSAGE(!why.empty(), bad);
    }

    std::vector<ConfigError> errors;
    auto c = parse_config_text("IcapServer icap://127.0.0.1/avscan\nBlockedExtensions exe, .SCR *.com pif exe\n"
                               "BlockedTypes application/x-msdownload video/*\n"
                               "ScanOnlyExtensions doc zip\nMaxMessageSize 10M\nOnBlocked discard\n",
                               "t.conf", errors);
    REQUIRE(c);
    CHECK(c->blocked_extensions == std::vector<std::string>{"exe", "scr", "com", "pif"});
    CHECK(c->blocked_types == std::vector<std::string>{"application/x-msdownload", "video/*"});
    CHECK(c->scan_only_extensions == std::vector<std::string>{"doc", "zip"});
    CHECK(c->max_message_size == 10u << 20);
    CHECK(c->on_blocked == Action::Discard);
    // round trip through dump_config
    auto again = parse_config_text(dump_config(*c), "dump", errors);
    REQUIRE(again);
    CHECK(*again == *c);

    c = parse_config_text("IcapServer icap://127.0.0.1/avscan\nBlockedExtensions exe e*e\nOnBlocked cleanse\n", "t.conf",
                          errors);
    CHECK_FALSE(c);
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].str() == "t.conf:2: BlockedExtensions: 'e*e' is not a file name extension (e.g. exe or .exe)");
    c = parse_config_text("IcapServer icap://127.0.0.1/avscan\nOnBlocked redirect\n", "t.conf", errors);
    CHECK_FALSE(c);
}

TEST_CASE("filters: names the walker decodes (RFC 2231, RFC 2047, two names)") {
    // plain and double extension
    CHECK(banned_names(attachment("; name=\"invoice.pdf.exe\"", "; filename=\"invoice.pdf.exe\"")) ==
          std::vector<std::string>{"invoice.pdf.exe=exe"});
    // RFC 2231, UTF-8 with percent escapes, and in continuations
    CHECK(banned_names(attachment("", "; filename*=UTF-8''r%C3%A9sum%C3%A9.exe")) ==
          std::vector<std::string>{"r\xC3\xA9sum\xC3\xA9.exe=exe"});
    CHECK(banned_names(attachment("", "; filename*0*=UTF-8''invoice.pdf; filename*1=\".e\"; filename*2=\"xe\"")) ==
          std::vector<std::string>{"invoice.pdf.exe=exe"});
    // RFC 2047 encoded word ("setup.exe" in base64 and in Q)
    CHECK(banned_names(attachment("", "; filename=\"=?UTF-8?B?c2V0dXAuZXhl?=\"")) ==
          std::vector<std::string>{"setup.exe=exe"});
    CHECK(banned_names(attachment("; name=\"=?iso-8859-1?Q?setup=2Eexe?=\"", "")) ==
          std::vector<std::string>{"setup.exe=exe"});
    // harmless filename, banned Content-Type name: still caught
    CHECK(banned_names(attachment("; name=\"setup.exe\"", "; filename=\"readme.txt\"")) ==
          std::vector<std::string>{"setup.exe=exe"});
    // trailing dot Windows drops
    CHECK(banned_names(attachment("", "; filename=\"setup.exe.\"")) == std::vector<std::string>{"setup.exe.=exe"});
    CHECK(banned_names(attachment("; name=\"report.pdf\"", "; filename=\"report.pdf\"")).empty());
}

TEST_CASE("filters: names inside an attached message/rfc822") {
    const std::string raw = crlf("From: a@example.com\n"
                                 "MIME-Version: 1.0\n"
                                 "Content-Type: multipart/mixed; boundary=\"OUT\"\n"
                                 "\n"
                                 "--OUT\n"
                                 "Content-Type: text/plain\n"
                                 "\n"
                                 "see attached\n"
                                 "--OUT\n"
                                 "Content-Type: message/rfc822\n"
                                 "\n"
                                 "From: c@example.com\n"
                                 "MIME-Version: 1.0\n"
                                 "Content-Type: multipart/mixed; boundary=\"IN\"\n"
                                 "\n"
                                 "--IN\n"
                                 "Content-Type: application/octet-stream\n"
                                 "Content-Disposition: attachment; filename*=UTF-8''inner.scr\n"
                                 "Content-Transfer-Encoding: base64\n"
                                 "\n"
                                 "aGVsbG8K\n"
                                 "--IN--\n"
                                 "--OUT--\n");
    CHECK(banned_names(raw) == std::vector<std::string>{"inner.scr=scr"});
}

TEST_CASE("policy: Blocked ranks below Infected and above the rest") {
    Config c;
    Verdict clean;
    clean.kind = VerdictKind::Clean;
    Verdict infected;
    infected.kind = VerdictKind::Infected;
    infected.threats = {"Eicar-Test-Signature"};
    Verdict unscannable;
    unscannable.kind = VerdictKind::Unscannable;
    unscannable.reason = "encrypted";
    const std::vector<BlockedPart> blocked = {{"2", "invoice.pdf.exe", "exe"}};

    auto d = decide(c, {clean, clean}, {}, blocked);
    CHECK(d.status == MessageStatus::Blocked);
    CHECK(d.action == Action::Reject);
    CHECK(d.rcode == "550");
    CHECK(d.xcode == "5.7.1");
    CHECK(d.reply == "Blocked attachment: invoice.pdf.exe (exe)");
    CHECK(d.reason == "blocked attachment name=\"invoice.pdf.exe\" rule=exe");
    CHECK(std::string(to_string(d.status)) == "Blocked");

    d = decide(c, {clean, infected}, {}, blocked); // the virus wins
    CHECK(d.status == MessageStatus::Infected);
    CHECK(d.action == Action::Reject);

    c.on_blocked = Action::Accept;
    d = decide(c, {clean}, {}, blocked);
    CHECK(d.status == MessageStatus::Blocked); // delivered, never Clean
    CHECK(d.action == Action::Accept);
    d = decide(c, {unscannable}, "two boundaries", blocked);
    CHECK(d.status == MessageStatus::Blocked);
    CHECK(d.action == Action::Reject); // OnAmbiguous still proposes reject
    c.on_blocked = Action::Discard;
    d = decide(c, {clean}, {}, blocked);
    CHECK(d.action == Action::Discard);

    auto s = skip_decision("skipped: SkipClientNetworks matched 127.0.0.0/8");
    CHECK(s.status == MessageStatus::Skipped);
    CHECK(s.action == Action::Accept);
    CHECK(std::string(to_string(s.status)) == "Skipped");
}

TEST_CASE("filters: which walked parts are blocked or left out by ScanOnlyExtensions") {
    Config c;
    auto item = [](std::string id, std::string name, std::string type, std::string type_name = {}) {
        ScanItem it;
        it.part_id = std::move(id);
        it.filename = std::move(name);
        it.content_type = std::move(type);
        it.type_name = std::move(type_name);
        return it;
    };
    const std::vector<ScanItem> items = {
        item("1", "", "text/plain"),
        item("2", "invoice.pdf.exe", "application/pdf"),
        item("3", "readme.txt", "text/plain", "tool.EXE"),
        item("4", "movie", "video/mp4"),
        item("preamble", "preamble.txt", "text/plain"),
        item("1.u1", "payload.scr", "application/octet-stream"),
        item("0", "message.exe", "message/rfc822"), // a view, never an attachment
    };
    CHECK(blocked_parts(c, items).empty()); // nothing configured
    c.blocked_extensions = {"exe", "scr", "txt"};
    c.blocked_types = {"video/*"};
    auto b = blocked_parts(c, items);
    REQUIRE(b.size() == 4);
    CHECK(b[0].part_id == "2");
    CHECK(b[0].rule == "exe");
    CHECK(b[1].part_id == "3");
    CHECK(b[1].filename == "readme.txt"); // txt matched the first name
    CHECK(b[2].part_id == "4");
    CHECK(b[2].rule == "video/*");
    CHECK(b[3].part_id == "1.u1");
    c.blocked_extensions = {"exe"};
    c.blocked_types.clear();
    b = blocked_parts(c, items);
    REQUIRE(b.size() == 2);
    CHECK(b[1].filename == "tool.EXE"); // the Content-Type name

    CHECK_FALSE(scan_only_skips(c, items[1])); // not configured: scan everything
    c.scan_only_extensions = {"pdf", "txt"};
    CHECK_FALSE(scan_only_skips(c, items[0])); // no name: scanned
    CHECK(scan_only_skips(c, items[1]));       // invoice.pdf.exe is an exe
    CHECK_FALSE(scan_only_skips(c, items[2]));
    CHECK(scan_only_skips(c, items[3]));
    CHECK_FALSE(scan_only_skips(c, items[4])); // the walker's own name
    CHECK(scan_only_skips(c, items[5]));
    CHECK_FALSE(scan_only_skips(c, items[6])); // the whole-message view
}
