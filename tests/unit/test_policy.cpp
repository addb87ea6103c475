// NAME
//   test_policy.cpp - verdicts to actions, table-driven
#include "icap-milter/policy/policy.hpp"

#include <doctest/doctest.h>

using namespace icapm;

namespace {

// v - a verdict of the given kind.
Verdict v(VerdictKind k, std::string threat_or_reason = {}) {
    Verdict out;
    out.kind = k;
    if (k == VerdictKind::Infected)
        out.threats.push_back(threat_or_reason);
    else
        out.reason = threat_or_reason;
    return out;
}

} // namespace

TEST_CASE("policy: all clean is accepted as Clean") {
    Config c;
    auto d = decide(c, {v(VerdictKind::Clean), v(VerdictKind::Clean)});
    CHECK(d.action == Action::Accept);
    CHECK(d.status == MessageStatus::Clean);
    CHECK(d.rcode.empty());
}

TEST_CASE("policy: defaults per category") {
    Config c; // reject / tempfail / accept
    struct Row { std::vector<Verdict> in; Action action; const char* status; const char* rcode; };
    std::vector<Row> rows = {
        {{v(VerdictKind::Clean), v(VerdictKind::Infected, "Eicar")}, Action::Reject, "Infected", "550"},
        {{v(VerdictKind::Error, "timeout")}, Action::Tempfail, "Unscanned", "451"},
        {{v(VerdictKind::Unscannable, "encrypted")}, Action::Accept, "Unscanned", ""},
        // a virus next to a failure is still rejected
        {{v(VerdictKind::Error, "x"), v(VerdictKind::Infected, "Eicar")}, Action::Reject, "Infected", "550"},
        // a failure next to an unscannable part is not accepted
        {{v(VerdictKind::Unscannable, "enc"), v(VerdictKind::Error, "x")}, Action::Tempfail, "Unscanned", "451"},
    };
    for (const auto& r : rows) {
        auto d = decide(c, r.in);
        CHECK(d.action == r.action);
        CHECK(std::string(to_string(d.status)) == r.status);
        CHECK(d.rcode == r.rcode);
    }
}

TEST_CASE("policy: configured actions and strictest wins") {
    Config c;
    c.on_infected = Action::Accept;
    c.on_fail = Action::Tempfail;
    auto d = decide(c, {v(VerdictKind::Infected, "Eicar"), v(VerdictKind::Error, "reset")});
    CHECK(d.action == Action::Tempfail);
    CHECK(d.status == MessageStatus::Infected);

    c.on_infected = Action::Discard;
    d = decide(c, {v(VerdictKind::Infected, "Eicar")});
    CHECK(d.action == Action::Discard);

    c.on_unscannable = Action::Reject;
    d = decide(c, {v(VerdictKind::Unscannable, "size limit")});
    CHECK(d.action == Action::Reject);
    CHECK(d.rcode == "550");
    CHECK(d.xcode == "5.7.1");
}

TEST_CASE("policy: reply carries sanitised, de-duplicated virus names") {
    Config c;
    auto d = decide(c, {v(VerdictKind::Infected, "Eicar-Test.UNOFFICIAL"),
                        v(VerdictKind::Infected, "Eicar-Test.UNOFFICIAL"), v(VerdictKind::Infected, "bad%name\r\n")});
    CHECK(d.threats.size() == 2);
    CHECK(d.reply.find("Eicar-Test.UNOFFICIAL") != std::string::npos);
    CHECK(d.reply.find('%') == std::string::npos);
    CHECK(d.reply.find('\r') == std::string::npos);
}

TEST_CASE("policy: infected with no name still counts as infected") {
    Config c;
    Verdict x;
    x.kind = VerdictKind::Infected;
    auto d = decide(c, {x});
    CHECK(d.action == Action::Reject);
    CHECK(d.threats == std::vector<std::string>{"unknown"});
}

TEST_CASE("policy: fail_decision follows OnFail") {
    Config c;
    CHECK(fail_decision(c, "spool").action == Action::Tempfail);
    c.on_fail = Action::Accept;
    auto d = fail_decision(c, "spool");
    CHECK(d.action == Action::Accept);
    CHECK(d.status == MessageStatus::Unscanned);
}

TEST_CASE("policy: reply_safe keeps words apart and nothing that could break a reply") {
    CHECK(reply_safe("blocked by scanner") == "blocked by scanner");
    CHECK(reply_safe("  two   spaces  ") == "two spaces");
    CHECK(reply_safe("50%\r\n<b>") == "50____b_");
    CHECK(reply_safe(std::string(300, 'x')).size() == 100);
}

TEST_CASE("policy: ambiguous MIME fails closed unless a virus is found") {
    Config c; // OnAmbiguous reject
    auto d = decide(c, {v(VerdictKind::Clean), v(VerdictKind::Clean)}, "boundary parameters that differ");
    CHECK(d.action == Action::Reject);
    CHECK(d.status == MessageStatus::Ambiguous);
    CHECK(std::string(to_string(d.status)) == "Ambiguous");
    CHECK(d.rcode == "550");
    CHECK(d.xcode == "5.6.0");
    CHECK(d.reply == "Ambiguous MIME structure: boundary parameters that differ");
    CHECK(d.reason.find("ambiguous MIME") == 0);
    // A virus found in any reading: Infected, 5.7.1.
    d = decide(c, {v(VerdictKind::Infected, "Eicar")}, "limit");
    CHECK(d.status == MessageStatus::Infected);
    CHECK(d.xcode == "5.7.1");
    // Ambiguous ranks above unscannable and failed parts; the strictest action wins.
    d = decide(c, {v(VerdictKind::Unscannable, "enc"), v(VerdictKind::Error, "x")}, "why");
    CHECK(d.status == MessageStatus::Ambiguous);
    CHECK(d.action == Action::Reject);
    c.on_ambiguous = Action::Tempfail;
    d = decide(c, {v(VerdictKind::Clean)}, "why");
    CHECK(d.action == Action::Tempfail);
    CHECK(d.xcode == "4.6.0");
    c.on_ambiguous = Action::Accept;
    d = decide(c, {v(VerdictKind::Clean)}, "why");
    CHECK(d.action == Action::Accept);
    CHECK(d.status == MessageStatus::Ambiguous); // delivered, but never Clean
    d = decide(c, {v(VerdictKind::Error, "x")}, "why");
    CHECK(d.action == Action::Tempfail); // a failed part is still not accepted
    // Hostile reasons cannot break the reply.
    d = decide(Config{}, {}, "part 1: \"b%s\r\n\x01\"");
    CHECK(d.reply.find('%') == std::string::npos);
    CHECK(d.reply.find('\r') == std::string::npos);
    CHECK(reply_text(std::string(500, 'a')).size() == 160);
}
