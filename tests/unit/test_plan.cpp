// NAME
//   test_plan.cpp - unit tests of the header-edit plan (make_plan)
// SUMMARY
//   Per action: which headers go and come, the subject tag (once, also
//   for a missing or encoded-word Subject), recipient changes for
//   redirect, the hold reason, RejectText, and tempfail when the MTA
//   withholds what an action needs.
#include "icap-milter/milter/plan.hpp"

#include <libmilter/mfapi.h>

#include <doctest/doctest.h>

using namespace icapm;

namespace {

// infected - an Outcome for an infected message with the given action.
Outcome infected(Action a) {
    Outcome o;
    o.decision.action = a;
    o.decision.status = MessageStatus::Infected;
    o.decision.threats = {"Eicar-Test"};
    o.decision.reason = "infected: Eicar-Test";
    o.decision.rcode = "550";
    o.decision.xcode = "5.7.1";
    o.decision.reply = "Virus found: Eicar-Test";
    o.infected_items = {{"2", "invoice.exe", {"Eicar-Test"}}};
    o.scanners = "icaps://av:1344/avscan";
    return o;
}

// input - a PlanInput for o with two recipients.
PlanInput input(const Config& c, const Outcome& o) {
    PlanInput in;
    in.config = &c;
    in.outcome = &o;
    in.hostname = "mx1.example.net";
    in.version = "9.9";
    in.queue_id = "4ABC";
    in.job = 7;
    in.sender = "alice@example.org";
    in.rcpts = {"<bob@example.net>", "<carol@example.net>"};
    in.subject = "Invoice";
    in.strip = {{"x-virus-status", 2}};
    return in;
}

// find - the first edit of name, or nullptr.
const HeaderEdit* find(const Plan& p, const std::string& name, HeaderEdit::Op op) {
    for (const auto& e : p.headers)
        if (e.name == name && e.op == op) return &e;
    return nullptr;
}

} // namespace

TEST_CASE("plan: accept of clean mail removes forged headers and adds ours, no tag") {
    Config c;
    Outcome o;
    o.decision.action = Action::Accept;
    o.decision.status = MessageStatus::Clean;
    Plan p = make_plan(input(c, o));
    CHECK(p.action == Action::Accept);
    REQUIRE(p.headers.size() == 4);
    CHECK(p.headers[0] == HeaderEdit{HeaderEdit::Op::Remove, "X-Virus-Status", 2, {}});
    CHECK(p.headers[1] == HeaderEdit{HeaderEdit::Op::Remove, "X-Virus-Status", 1, {}});
    CHECK(p.headers[2].value == "icap-milter 9.9 on mx1.example.net");
    CHECK(p.headers[3] == HeaderEdit{HeaderEdit::Op::Add, "X-Virus-Status", 1, "Clean"});
    CHECK(find(p, "Subject", HeaderEdit::Op::Change) == nullptr);
}

TEST_CASE("plan: infected and accepted is tagged once, also without or with an encoded Subject") {
    Config c;
    Outcome o = infected(Action::Accept);
    PlanInput in = input(c, o);
    Plan p = make_plan(in);
    const HeaderEdit* s = find(p, "Subject", HeaderEdit::Op::Change);
    REQUIRE(s);
    CHECK(s->value == "[VIRUS] Invoice");
    CHECK(find(p, "X-Virus-Status", HeaderEdit::Op::Add)->value == "Infected (Eicar-Test)");
    in.subject = "[VIRUS] Invoice"; // tagged already: not again
    CHECK(find(make_plan(in), "Subject", HeaderEdit::Op::Change) == nullptr);
    in.subject = "=?utf-8?B?UmVjaG51bmc=?=";
    CHECK(find(make_plan(in), "Subject", HeaderEdit::Op::Change)->value == "[VIRUS] =?utf-8?B?UmVjaG51bmc=?=");
    in.subject.reset();
    CHECK(find(make_plan(in), "Subject", HeaderEdit::Op::Add)->value == "[VIRUS]");
    c.subject_tag = "[{status}: {viruses}]";
    in.subject = "x";
    CHECK(find(make_plan(in), "Subject", HeaderEdit::Op::Change)->value == "[Infected: Eicar-Test] x");
    c.subject_tag = "";
    CHECK(find(make_plan(in), "Subject", HeaderEdit::Op::Change) == nullptr);
}

TEST_CASE("plan: reject uses RejectText, sanitised") {
    Config c;
    Outcome o = infected(Action::Reject);
    o.decision.threats = {"Evil\r\n250 ok%n"};
    c.reject_text = "Rejected {viruses} in {files} for {recipients} ({queue_id})";
    Plan p = make_plan(input(c, o));
    CHECK(p.action == Action::Reject);
    CHECK(p.rcode == "550");
    CHECK(p.xcode == "5.7.1");
    CHECK(p.reply == "Rejected Evil  250 ok_n in invoice.exe for <bob@example.net>, <carol@example.net> (4ABC)");
    CHECK(p.headers.empty());
    // Not infected: the decision's own reply.
    Outcome f;
    f.decision.action = Action::Tempfail;
    f.decision.rcode = "451";
    f.decision.xcode = "4.7.1";
    f.decision.reply = "Virus scan failed, please try again later";
    CHECK(make_plan(input(c, f)).reply == f.decision.reply);
}

TEST_CASE("plan: hold asks for smfi_quarantine, or tempfails without it") {
    Config c;
    Outcome o = infected(Action::Hold);
    PlanInput in = input(c, o);
    Plan p = make_plan(in);
    CHECK(p.action == Action::Hold);
    CHECK(p.quarantine_reason == "icap-milter: Infected: infected: Eicar-Test");
    CHECK(find(p, "Subject", HeaderEdit::Op::Change)->value == "[VIRUS] Invoice");
    in.granted = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    p = make_plan(in);
    CHECK(p.action == Action::Tempfail);
    CHECK(p.headers.empty());
    CHECK(p.quarantine_reason.empty());
    CHECK(p.note.find("SMFIF_QUARANTINE") != std::string::npos);
}

TEST_CASE("plan: redirect replaces every recipient, names them in a header") {
    Config c;
    c.redirect_address = "virus-admin@example.net";
    Outcome o = infected(Action::Redirect);
    PlanInput in = input(c, o);
    Plan p = make_plan(in);
    CHECK(p.action == Action::Redirect);
    CHECK(p.del_rcpts == std::vector<std::string>{"<bob@example.net>", "<carol@example.net>"});
    CHECK(p.add_rcpts == std::vector<std::string>{"<virus-admin@example.net>"});
    CHECK(find(p, "X-Icap-Milter-Original-Recipients", HeaderEdit::Op::Add)->value ==
          "<bob@example.net>, <carol@example.net>");
    in.rcpts_complete = false; // more recipients than were kept: cannot remove them all
    CHECK(make_plan(in).action == Action::Tempfail);
    in.rcpts_complete = true;
    in.granted = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT;
    CHECK(make_plan(in).action == Action::Tempfail);
}

TEST_CASE("plan: a verified token stays, any other goes; discard edits nothing") {
    Config c;
    Outcome o;
    o.decision.action = Action::Accept;
    o.decision.status = MessageStatus::Clean;
    PlanInput in = input(c, o);
    in.strip = {{"x-scan-token", 1}};
    in.tokens_enabled = true;
    CHECK(find(make_plan(in), c.token_header, HeaderEdit::Op::Remove) == nullptr);
    o.strip_tokens = true;
    o.new_token = "abc";
    Plan p = make_plan(in);
    CHECK(find(p, c.token_header, HeaderEdit::Op::Remove) != nullptr);
    CHECK(find(p, c.token_header, HeaderEdit::Op::Add)->value == "abc");
    Outcome d = infected(Action::Discard);
    CHECK(make_plan(input(c, d)).headers.empty());
}

TEST_CASE("plan: notify and clean replace the body and fix the top-level MIME fields") {
    Config c;
    Outcome o = infected(Action::Notify);
    PlanInput in = input(c, o);
    RebuiltMessage r = notify_message("Removed: Eicar-Test");
    in.rebuilt = &r;
    in.header_counts = {{"content-type", 2}, {"content-disposition", 1}, {"mime-version", 1}};
    Plan p = make_plan(in);
    CHECK(p.action == Action::Notify);
    REQUIRE(p.body);
    CHECK(*p.body == "Removed: Eicar-Test\r\n");
    // Content-Type: the second copy goes, the first is changed.
    CHECK(find(p, "Content-Type", HeaderEdit::Op::Remove)->index == 2);
    CHECK(find(p, "Content-Type", HeaderEdit::Op::Change)->value == "text/plain; charset=us-ascii");
    CHECK(find(p, "Content-Transfer-Encoding", HeaderEdit::Op::Add)->value == "7bit");
    CHECK(find(p, "Content-Disposition", HeaderEdit::Op::Remove)->index == 1);
    CHECK(find(p, "MIME-Version", HeaderEdit::Op::Change)->value == "1.0");
    CHECK(find(p, "Subject", HeaderEdit::Op::Change)->value == "[VIRUS] Invoice");
    // No body, or no right to change it: tempfail, nothing delivered.
    in.rebuilt = nullptr;
    CHECK(make_plan(in).action == Action::Tempfail);
    in.rebuilt = &r;
    in.granted = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    CHECK(make_plan(in).action == Action::Tempfail);
    Outcome k = infected(Action::Clean);
    PlanInput ck = input(c, k);
    ck.rebuilt = &r;
    CHECK(make_plan(ck).action == Action::Clean);
}

TEST_CASE("plan: a skipped message says Skipped, keeps no token, and forged headers still go") {
    Config c;
    Outcome o;
    o.decision = skip_decision("skipped: SkipClientNetworks matched 127.0.0.0/8");
    o.scanners = "not scanned: SkipClientNetworks";
    o.strip_tokens = true;
    PlanInput in = input(c, o);
    in.strip = {{"x-virus-status", 1}, {"x-scan-token", 1}};
    in.tokens_enabled = true;
    Plan p = make_plan(in);
    CHECK(p.action == Action::Accept);
    CHECK(find(p, "X-Virus-Status", HeaderEdit::Op::Remove));
    CHECK(find(p, "X-Scan-Token", HeaderEdit::Op::Remove));
    CHECK(find(p, "X-Scan-Token", HeaderEdit::Op::Add) == nullptr);
    const HeaderEdit* st = find(p, "X-Virus-Status", HeaderEdit::Op::Add);
    REQUIRE(st);
    CHECK(st->value == "Skipped");
    const HeaderEdit* sc = find(p, "X-Virus-Scanned", HeaderEdit::Op::Add);
    REQUIRE(sc);
    CHECK(sc->value == "icap-milter 9.9 on mx1.example.net (not scanned: SkipClientNetworks)");
    CHECK(find(p, "Subject", HeaderEdit::Op::Change) == nullptr);
}

TEST_CASE("plan: Blocked is rejected with its own reply, or delivered as Blocked; templates name the file") {
    Config c;
    Outcome o;
    o.blocked_items = {{"2", "invoice.pdf.exe", "exe"}};
    Verdict clean;
    clean.kind = VerdictKind::Clean;
    o.decision = decide(c, {clean}, {}, o.blocked_items);
    REQUIRE(o.decision.status == MessageStatus::Blocked);
    Plan p = make_plan(input(c, o));
    CHECK(p.action == Action::Reject);
    CHECK(p.rcode == "550");
    CHECK(p.reply == "Blocked attachment: invoice.pdf.exe (exe)"); // not RejectText's "Virus found"

    c.on_blocked = Action::Accept;
    o.decision = decide(c, {clean}, {}, o.blocked_items);
    p = make_plan(input(c, o));
    CHECK(p.action == Action::Accept);
    const HeaderEdit* st = find(p, "X-Virus-Status", HeaderEdit::Op::Add);
    REQUIRE(st);
    CHECK(st->value == "Blocked");

    TemplateFields f = template_fields(input(c, o));
    CHECK(f.files == std::vector<std::string>{"invoice.pdf.exe"});
    CHECK(f.status == "Blocked");
    CHECK(f.viruses == std::vector<std::string>{"a blocked file type (exe)"});
}
