// NAME
//   test_alerts.cpp - alert rate limits, digests, load and pool watches
// SUMMARY
//   The policy classes of stats/alert_policy.hpp driven by a made-up
//   clock: one mail per kind per interval, the rest counted into a
//   digest; AlertInfection none/each/digest; start and stop never held;
//   the load rule (above LoadThreshold for LoadAlertInterval, once per
//   interval); scanner down/up, ISTag change and staleness, self-test and
//   certificate warnings from pool snapshots; the composed mail's headers.
#include "icap-milter/config/config.hpp"
#include "icap-milter/stats/alert_policy.hpp"
#include "icap-milter/stats/alerts.hpp"

#include <doctest/doctest.h>

using namespace icapm;
using namespace std::chrono_literals;

namespace {

const AlertTime T0 = AlertTime{} + 1000h; // any fixed steady time

// event - an event of kind k with a recognisable line.
AlertEvent event(AlertKind k, const std::string& what, std::int64_t unix_time = 1'800'000'000) {
    return AlertEvent{k, unix_time, what, "line " + what, "body " + what};
}

// settings - AlertRateLimit 10m, LoadAlertInterval 5m, AlertInfection mode.
AlertSettings settings(const std::string& infection = "each") { return AlertSettings{10min, 5min, infection}; }

// server - a pool snapshot entry.
ServerStatus server(const std::string& name, bool down = false, const std::string& istag = "T1") {
    ServerStatus s;
    s.name = name;
    s.down = down;
    s.istag = istag;
    s.self_test = "passed (trusted up to 1000 bytes)";
    return s;
}

} // namespace

TEST_CASE("alerts: one mail per kind per interval, the rest in a digest when it has passed") {
    AlertLimiter l;
    auto s = settings();
    auto first = l.offer(event(AlertKind::ScannerDown, "a down"), s, T0);
    REQUIRE(first);
    CHECK(first->subject == "a down");
    CHECK(first->body == "body a down");
    // Another kind is not limited by this one.
    CHECK(l.offer(event(AlertKind::DefinitionsUpdated, "defs"), s, T0 + 1s));
    // Same kind within 10 minutes: held and counted.
    CHECK_FALSE(l.offer(event(AlertKind::ScannerDown, "b down"), s, T0 + 1min));
    CHECK_FALSE(l.offer(event(AlertKind::ScannerDown, "c down"), s, T0 + 2min));
    CHECK(l.held(AlertKind::ScannerDown) == 2);
    CHECK(l.due(s, T0 + 9min).empty());
    auto digests = l.due(s, T0 + 10min);
    REQUIRE(digests.size() == 1);
    CHECK(digests[0].kind == AlertKind::ScannerDown);
    CHECK(digests[0].subject.rfind("2 more scanner-down events since ", 0) == 0);
    CHECK(digests[0].body.find("line b down") != std::string::npos);
    CHECK(digests[0].body.find("line c down") != std::string::npos);
    CHECK(l.held(AlertKind::ScannerDown) == 0);
    // The digest counts as the kind's mail: the next event waits again.
    CHECK_FALSE(l.offer(event(AlertKind::ScannerDown, "d down"), s, T0 + 11min));
    CHECK(l.due(s, T0 + 19min).empty());
    CHECK(l.due(s, T0 + 20min).size() == 1);
    // After a quiet interval the next event goes out at once.
    CHECK(l.offer(event(AlertKind::ScannerDown, "e down"), s, T0 + 31min));
}

TEST_CASE("alerts: a digest lists at most kMaxListed events and counts the rest") {
    AlertLimiter l;
    auto s = settings();
    REQUIRE(l.offer(event(AlertKind::Infection, "first"), s, T0));
    for (int i = 0; i < 50; ++i) CHECK_FALSE(l.offer(event(AlertKind::Infection, "n" + std::to_string(i)), s, T0 + 1s));
    auto d = l.due(s, T0 + 10min);
    REQUIRE(d.size() == 1);
    CHECK(d[0].subject.rfind("50 more infected messages since", 0) == 0);
    CHECK(d[0].body.find("line n19") != std::string::npos);
    CHECK(d[0].body.find("line n20") == std::string::npos);
    CHECK(d[0].body.find("and 30 more not listed") != std::string::npos);
}

TEST_CASE("alerts: AlertInfection none drops, digest holds even the first") {
    SUBCASE("none") {
        AlertLimiter l;
        CHECK_FALSE(l.offer(event(AlertKind::Infection, "x"), settings("none"), T0));
        CHECK(l.held(AlertKind::Infection) == 0);
        CHECK(l.due(settings("none"), T0 + 1h).empty());
        // Other kinds are unaffected.
        CHECK(l.offer(event(AlertKind::ScannerDown, "d"), settings("none"), T0));
    }
    SUBCASE("digest") {
        AlertLimiter l;
        auto s = settings("digest");
        CHECK_FALSE(l.offer(event(AlertKind::Infection, "x"), s, T0));
        CHECK_FALSE(l.offer(event(AlertKind::Infection, "y"), s, T0 + 3min));
        CHECK(l.due(s, T0 + 9min).empty());
        auto d = l.due(s, T0 + 10min); // one interval after the first held infection
        REQUIRE(d.size() == 1);
        CHECK(d[0].subject.rfind("2 more infected messages", 0) == 0);
        CHECK(d[0].body.find("line x") != std::string::npos);
        CHECK(d[0].body.find("line y") != std::string::npos);
    }
}

TEST_CASE("alerts: start and stop are never held; load follows LoadAlertInterval") {
    AlertLimiter l;
    auto s = settings();
    CHECK(l.offer(event(AlertKind::Start, "start"), s, T0));
    CHECK(l.offer(event(AlertKind::Start, "start again"), s, T0 + 1s));
    CHECK(l.offer(event(AlertKind::Stop, "stop"), s, T0 + 2s));
    CHECK(l.offer(event(AlertKind::Load, "load 1"), s, T0));
    CHECK_FALSE(l.offer(event(AlertKind::Load, "load 2"), s, T0 + 4min));
    CHECK(l.due(s, T0 + 5min).size() == 1); // 5m, not AlertRateLimit's 10m
}

TEST_CASE("alerts: flush at stop sends every digest at once") {
    AlertLimiter l;
    auto s = settings();
    REQUIRE(l.offer(event(AlertKind::Infection, "a"), s, T0));
    CHECK_FALSE(l.offer(event(AlertKind::Infection, "b"), s, T0 + 1s));
    REQUIRE(l.offer(event(AlertKind::ScannerUp, "u"), s, T0));
    CHECK_FALSE(l.offer(event(AlertKind::ScannerUp, "v"), s, T0 + 1s));
    auto all = l.flush();
    CHECK(all.size() == 2);
    CHECK(l.held(AlertKind::Infection) == 0);
    CHECK(l.held(AlertKind::ScannerUp) == 0);
}

TEST_CASE("alerts: load alert after LoadAlertInterval above the threshold, then once per interval") {
    LoadWatch w;
    const auto iv = 2s;
    CHECK_FALSE(w.observe(5, 10, iv, T0, 0));          // below
    CHECK_FALSE(w.observe(11, 10, iv, T0 + 1s, 0));    // above from here
    CHECK_FALSE(w.observe(12, 10, iv, T0 + 2s, 0));    // only 1 s above
    auto a = w.observe(13, 10, iv, T0 + 3s, 0);        // 2 s above
    REQUIRE(a);
    CHECK(a->kind == AlertKind::Load);
    CHECK(a->subject.find("13 parts waiting") != std::string::npos);
    CHECK(a->line.find("peak 13") != std::string::npos);
    int alerts = 1;
    // Stays above for 10 more seconds, sampled every 100 ms: one alert per 2 s.
    for (int i = 1; i <= 100; ++i)
        if (w.observe(20, 10, iv, T0 + 3s + i * 100ms, 0)) ++alerts;
    CHECK(alerts == 6);
    // Dropping below resets the clock: a short spike makes no alert.
    CHECK_FALSE(w.observe(1, 10, iv, T0 + 20s, 0));
    CHECK_FALSE(w.observe(50, 10, iv, T0 + 21s, 0));
    CHECK_FALSE(w.observe(1, 10, iv, T0 + 22s, 0));
    CHECK_FALSE(w.observe(50, 10, iv, T0 + 23s, 0));
    CHECK(w.observe(50, 10, iv, T0 + 25s, 0));
}

TEST_CASE("alerts: pool watch reports down, back up and ISTag changes, not the first sight") {
    PoolWatch w;
    CHECK(w.observe({server("icap://a/x"), server("icap://b/x")}, 0ms, T0, 100).empty());
    auto down = w.observe({server("icap://a/x", true), server("icap://b/x")}, 0ms, T0 + 1s, 101);
    REQUIRE(down.size() == 1);
    CHECK(down[0].kind == AlertKind::ScannerDown);
    CHECK(down[0].subject == "scanner icap://a/x is down");
    CHECK(w.observe({server("icap://a/x", true), server("icap://b/x")}, 0ms, T0 + 2s, 102).empty());
    auto up = w.observe({server("icap://a/x"), server("icap://b/x", false, "T2")}, 0ms, T0 + 3s, 103);
    REQUIRE(up.size() == 2);
    CHECK(up[0].kind == AlertKind::ScannerUp);
    CHECK(up[0].subject == "scanner icap://a/x is back up");
    CHECK(up[1].kind == AlertKind::DefinitionsUpdated);
    CHECK(up[1].subject == "definitions updated on icap://b/x: T1 -> T2");
    // An unknown ISTag (server restarted, not asked yet) is no change.
    CHECK(w.observe({server("icap://a/x", false, ""), server("icap://b/x", false, "T2")}, 0ms, T0 + 4s, 104).empty());
    CHECK(w.observe({server("icap://a/x", false, "T1"), server("icap://b/x", false, "T2")}, 0ms, T0 + 5s, 105).empty());
}

TEST_CASE("alerts: after a reload (rebase) the new pool's first state is a baseline, not a change") {
    PoolWatch w;
    CHECK(w.observe({server("a", true)}, 0ms, T0, 0).empty());
    w.rebase();
    // The new pool starts the server as not down: no "back up" mail.
    CHECK(w.observe({server("a", false, "")}, 0ms, T0 + 1s, 0).empty());
    // From there on changes count again, and the ISTag history was kept.
    CHECK(w.observe({server("a", true, "")}, 0ms, T0 + 2s, 0).size() == 1);
    auto upd = w.observe({server("a", true, "T5")}, 0ms, T0 + 3s, 0);
    REQUIRE(upd.size() == 1);
    CHECK(upd[0].kind == AlertKind::DefinitionsUpdated);
}

TEST_CASE("alerts: definitions stale after DefinitionsMaxAge without an ISTag change, again each max age") {
    PoolWatch w;
    const auto age = 48h;
    CHECK(w.observe({server("s")}, age, T0, 0).empty());
    CHECK(w.observe({server("s")}, age, T0 + 47h, 0).empty());
    auto stale = w.observe({server("s")}, age, T0 + 48h, 0);
    REQUIRE(stale.size() == 1);
    CHECK(stale[0].kind == AlertKind::DefinitionsStale);
    CHECK(w.observe({server("s")}, age, T0 + 60h, 0).empty());
    CHECK(w.observe({server("s")}, age, T0 + 96h, 0).size() == 1);
    // An update resets the age.
    auto upd = w.observe({server("s", false, "T9")}, age, T0 + 97h, 0);
    REQUIRE(upd.size() == 1);
    CHECK(upd[0].kind == AlertKind::DefinitionsUpdated);
    CHECK(w.observe({server("s", false, "T9")}, age, T0 + 144h, 0).empty());
    CHECK(w.observe({server("s", false, "T9")}, age, T0 + 145h, 0).size() == 1);
    // 0 turns the rule off.
    PoolWatch off;
    CHECK(off.observe({server("s")}, 0ms, T0, 0).empty());
    CHECK(off.observe({server("s")}, 0ms, T0 + 1000h, 0).empty());
}

TEST_CASE("alerts: self-test failures and certificate warnings, once per distinct text") {
    PoolWatch w;
    ServerStatus s = server("icaps://a/x");
    s.tls_warning = "certificate \"CN=a\" expires on 2026-12-01 (3 days left)";
    auto first = w.observe({s}, 0ms, T0, 0);
    REQUIRE(first.size() == 1); // a warning present at start is worth telling
    CHECK(first[0].kind == AlertKind::Certificate);
    CHECK(w.observe({s}, 0ms, T0 + 1s, 0).empty());
    s.tls_warning = "certificate \"CN=a\" expires on 2026-12-01 (2 days left)";
    CHECK(w.observe({s}, 0ms, T0 + 2s, 0).size() == 1);

    s.self_test = "missed the EICAR test file";
    s.gets_mail = false;
    auto st = w.observe({s}, 0ms, T0 + 3s, 0);
    REQUIRE(st.size() == 1);
    CHECK(st[0].kind == AlertKind::SelfTest);
    CHECK(st[0].body.find("gets no mail") != std::string::npos);
    CHECK(w.observe({s}, 0ms, T0 + 4s, 0).empty());
    s.self_test = "passed (trusted up to 1000 bytes)";
    s.gets_mail = true;
    CHECK(w.observe({s}, 0ms, T0 + 5s, 0).empty());
    s.self_test = "misses: zip";
    s.misses = {"zip"};
    CHECK(w.observe({s}, 0ms, T0 + 6s, 0).size() == 1);
}

TEST_CASE("alerts: infection event names queue id, sender, recipients, viruses and action, not content") {
    InfectionAlert a;
    a.queue_id = "4ABC";
    a.sender = "bad@example.net";
    a.recipients = {"u1@example.com", "u2@example.com"};
    a.recipient_count = 3;
    a.viruses = {"Eicar-Test-Signature", "Other\r\nBcc: x"};
    a.files = {"eicar.com"};
    a.action = "reject";
    AlertEvent e = infection_event(a, 1'800'000'000);
    CHECK(e.kind == AlertKind::Infection);
    CHECK(e.subject.find("4ABC") != std::string::npos);
    CHECK(e.subject.find("Eicar-Test-Signature") != std::string::npos);
    CHECK(e.subject.find('\n') == std::string::npos);
    CHECK(e.body.find("u1@example.com, u2@example.com, and 1 more") != std::string::npos);
    CHECK(e.body.find("Action:     reject") != std::string::npos);
    CHECK(e.line.find("rcpts=3") != std::string::npos);
}

TEST_CASE("alerts: the composed mail has the headers and no way to inject more") {
    AlertMail m{AlertKind::ScannerDown, "scanner x is down\r\nBcc: evil@example.com", "line 1\nline 2\x01\n"};
    AlertHeaders h{"mx.example.com", "icap-milter@mx.example.com", {"a@example.com", "b@example.com"},
                   1'800'000'000, "id.1@mx.example.com"};
    std::string text = compose_alert_message(m, h);
    auto head = text.substr(0, text.find("\n\n"));
    CHECK(head.find("Date: Fri, 15 Jan 2027 08:00:00 +0000\n") != std::string::npos);
    CHECK(head.find("From: icap-milter@mx.example.com\n") != std::string::npos);
    CHECK(head.find("To: a@example.com, b@example.com\n") != std::string::npos);
    CHECK(head.find("Subject: [icap-milter] mx.example.com: scanner x is down??Bcc: evil@example.com\n") !=
          std::string::npos);
    CHECK(head.find("\nBcc:") == std::string::npos);
    CHECK(head.find("Message-ID: <id.1@mx.example.com>\n") != std::string::npos);
    CHECK(head.find("Auto-Submitted: auto-generated\n") != std::string::npos);
    CHECK(head.find("X-Icap-Milter-Alert: scanner-down\n") != std::string::npos);
    CHECK(text.find("line 2?\n") != std::string::npos);
}

TEST_CASE("alerts: the config keys parse lists and refuse bad ones") {
    std::vector<ConfigError> errors;
    const std::string server = "IcapServer icap://127.0.0.1/avscan\n";
    auto c = parse_config_text(server + "AlertRecipients a@example.com,b@example.com c@example.com\n"
                                        "AlertSmtpServer \"mx1.example.com, 10.0.0.2:2525\"\n",
                               "t.conf", errors);
    REQUIRE(c);
    CHECK(c->alert_recipients == std::vector<std::string>{"a@example.com", "b@example.com", "c@example.com"});
    CHECK(c->alert_smtp_servers == std::vector<std::string>{"mx1.example.com", "10.0.0.2:2525"});
    // An entry given twice counts once, as in every list key.
    auto twice = parse_config_text(server + "AlertSmtpServer a:25,a:25\n", "t.conf", errors);
    REQUIRE(twice);
    CHECK(twice->alert_smtp_servers == std::vector<std::string>{"a:25"});
    // Defaults: no recipients (no alerts), the local MTA, IMail's load defaults.
    const Config d;
    CHECK(d.alert_recipients.empty());
    CHECK(d.alert_smtp_servers == std::vector<std::string>{"127.0.0.1:25"});
    CHECK(d.load_threshold == 100);
    CHECK(d.load_alert_interval == 5min);
    for (const char* bad : {"AlertSmtpServer \"\"", "AlertSmtpServer host:0", "AlertSmtpServer a,b,c,d,e",
                            "AlertRecipients \"a@b, not-an-address\"",
                            "AlertRecipients <a@b>", "AlertInfection sometimes", "LoadThreshold 0",
                            "LoadAlertInterval 0s", "AlertRateLimit 0s", "DefinitionsMaxAge 10000h",
                            "AlertSender \"a b@c\""}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_config_text(server + bad + "\n", "t.conf", errors));
    }
}
