// NAME
//   plan.cpp - one list of everything a decision does to a message
// SUMMARY
//   Delivered messages (accept, hold, redirect) lose every incoming
//   X-Virus-* header and every token header that did not verify, get
//   ours, and, when infected or held or redirected, the SubjectTag once.
//   Hold and redirect need actions the MTA may withhold (SMFIF_QUARANTINE,
//   SMFIF_ADDRCPT/DELRCPT): without them the message is tempfailed, never
//   delivered to the original recipients. Reject replies of infected
//   mail come from RejectText; every template value is sanitised for
//   its place (template.cpp).
#include "icap-milter/milter/plan.hpp"

#include "icap-milter/common/ascii.hpp"
#include "icap-milter/log/log.hpp"
#include "icap-milter/policy/template.hpp"
#include "icap-milter/quarantine/store.hpp"

#include <libmilter/mfapi.h>

namespace icapm {

namespace {

constexpr const char* kScannedHeader = "X-Virus-Scanned";
constexpr const char* kStatusHeader = "X-Virus-Status";
constexpr const char* kRecipientsHeader = "X-Icap-Milter-Original-Recipients";

} // namespace

// template_fields - the template fields of this message.
TemplateFields template_fields(const PlanInput& in) {
    const Decision& d = in.outcome->decision;
    TemplateFields f;
    f.viruses = d.threats;
    f.files = infected_files(*in.outcome);
    if (d.status == MessageStatus::Blocked) { // the banned files, and the rule for {viruses}
        for (const auto& b : in.outcome->blocked_items)
            if (f.files.size() < 16) f.files.push_back(b.filename.empty() ? "part " + b.part_id : b.filename);
        if (f.viruses.empty() && !in.outcome->blocked_items.empty())
            f.viruses = {"a blocked file type (" + in.outcome->blocked_items.front().rule + ")"};
    }
    f.sender = in.sender;
    f.recipients = in.rcpts;
    f.queue_id = in.queue_id;
    f.job_id = "Job-" + std::to_string(in.job);
    f.date = in.date;
    f.host = in.hostname;
    f.status = to_string(d.status);
    f.reason = d.reason;
    f.subject = in.subject.value_or("");
    return f;
}

namespace {

// tempfail - give up on an action the MTA does not allow.
void tempfail(Plan& p, std::string why) {
    p.action = Action::Tempfail;
    p.headers.clear();
    p.del_rcpts.clear();
    p.add_rcpts.clear();
    p.quarantine_reason.clear();
    p.rcode = "451";
    p.xcode = "4.7.1";
    p.reply = "Message cannot be handled as configured, please try again later";
    p.note = std::move(why);
}

// status_headers - forged ones out, the token, ours in.
void status_headers(const PlanInput& in, Plan& p) {
    const Config& c = *in.config;
    const Outcome& out = *in.outcome;
    const std::string token_name = lower(c.token_header);
    for (const auto& [name, count] : in.strip) {
        std::string canonical = name == "x-virus-scanned"          ? kScannedHeader
                                : name == "x-virus-status"         ? kStatusHeader
                                : name == "x-icap-milter-released" ? std::string(kReleaseHeader)
                                                                   : c.token_header;
        // A token that verified stays for the next hop; any other is
        // removed, and with tokens off none can have verified.
        if (name == token_name && in.tokens_enabled && !out.strip_tokens) continue;
        for (int i = count; i >= 1; --i) p.headers.push_back({HeaderEdit::Op::Remove, canonical, i, {}});
    }
    if (!out.new_token.empty()) p.headers.push_back({HeaderEdit::Op::Add, c.token_header, 1, out.new_token});
    if (!c.add_headers) return;
    std::string scanned = "icap-milter " + in.version + " on " + sanitize(in.hostname, 200);
    if (!out.scanners.empty()) scanned += " (" + out.scanners + ")";
    const Decision& d = out.decision;
    std::string status = to_string(d.status);
    if (d.status == MessageStatus::Infected && !d.threats.empty()) {
        std::string names;
        for (const auto& t : d.threats) names += (names.empty() ? "" : ", ") + t;
        status += " (" + names + ")";
    }
    p.headers.push_back({HeaderEdit::Op::Add, kScannedHeader, 1, header_line(scanned, 900)});
    p.headers.push_back({HeaderEdit::Op::Add, kStatusHeader, 1, header_line(status, 900)});
}

// subject_tag - SubjectTag in front of the Subject, once.
void subject_tag(const PlanInput& in, Plan& p) {
    std::string tag = header_line(render(in.config->subject_tag, template_fields(in)), 100);
    if (tag.empty()) return;
    if (!in.subject) {
        p.headers.push_back({HeaderEdit::Op::Add, "Subject", 1, tag});
        return;
    }
    std::string_view s = trim(*in.subject);
    if (s.substr(0, tag.size()) == tag) return; // already tagged (a loop, or by the sender)
    p.headers.push_back({HeaderEdit::Op::Change, "Subject", 1, tag + (s.empty() ? "" : " ") + std::string(s)});
}

// body_headers - the rebuilt body's top-level edits as numbered
// operations on the fields the message has.
void body_headers(const PlanInput& in, Plan& p) {
    for (const MimeHeaderEdit& e : in.rebuilt->headers) {
        auto it = in.header_counts.find(lower(e.name));
        int count = it == in.header_counts.end() ? 0 : it->second;
        if (e.remove_all) {
            for (int i = count; i >= 1; --i) p.headers.push_back({HeaderEdit::Op::Remove, e.name, i, {}});
            continue;
        }
        for (int i = count; i >= 2; --i) p.headers.push_back({HeaderEdit::Op::Remove, e.name, i, {}});
        p.headers.push_back({count >= 1 ? HeaderEdit::Op::Change : HeaderEdit::Op::Add, e.name, 1, e.value});
    }
}

} // namespace

// tempfail_plan - the public face of tempfail().
void tempfail_plan(Plan& p, std::string why) { tempfail(p, std::move(why)); }

// make_plan - the answer and the edits for one message.
Plan make_plan(const PlanInput& in) {
    const Decision& d = in.outcome->decision;
    Plan p;
    p.action = d.action;
    switch (d.action) {
    case Action::Reject:
    case Action::Tempfail:
        p.rcode = d.rcode;
        p.xcode = d.xcode;
        p.reply = d.reply;
        if (d.status == MessageStatus::Infected && d.action == Action::Reject) {
            std::string text = reply_line(render(in.config->reject_text, template_fields(in)));
            if (!text.empty()) p.reply = text;
        }
        return p;
    case Action::Discard:
        return p;
    case Action::Accept:
    case Action::Hold:
    case Action::Redirect:
    case Action::Notify:
    case Action::Clean:
        break;
    }
    status_headers(in, p);
    bool tag = d.status == MessageStatus::Infected || d.action != Action::Accept;
    if (tag) subject_tag(in, p);
    if (d.action == Action::Notify || d.action == Action::Clean) {
        if (!(in.granted & SMFIF_CHGBODY)) {
            tempfail(p, std::string(to_string(d.action)) + " needs SMFIF_CHGBODY, which the MTA does not allow");
            return p;
        }
        if (!in.rebuilt) {
            tempfail(p, std::string(to_string(d.action)) + ": the new body could not be made");
            return p;
        }
        body_headers(in, p);
        p.body = in.rebuilt->body;
    } else if (d.action == Action::Hold) {
        if (!(in.granted & SMFIF_QUARANTINE)) {
            tempfail(p, "hold needs SMFIF_QUARANTINE, which the MTA does not allow");
            return p;
        }
        p.quarantine_reason = header_line("icap-milter: " + std::string(to_string(d.status)) + ": " + d.reason, 200);
    } else if (d.action == Action::Redirect) {
        if ((in.granted & (SMFIF_ADDRCPT | SMFIF_DELRCPT)) != (SMFIF_ADDRCPT | SMFIF_DELRCPT)) {
            tempfail(p, "redirect needs SMFIF_ADDRCPT and SMFIF_DELRCPT, which the MTA does not allow");
            return p;
        }
        if (!in.rcpts_complete || in.rcpts.empty()) {
            tempfail(p, "redirect: the recipients could not all be kept");
            return p;
        }
        std::string list;
        for (const auto& r : in.rcpts) list += (list.empty() ? "" : ", ") + r;
        p.headers.push_back({HeaderEdit::Op::Add, kRecipientsHeader, 1, header_line(list, 900)});
        p.del_rcpts = in.rcpts;
        p.add_rcpts = {"<" + in.config->redirect_address + ">"};
    }
    return p;
}

} // namespace icapm
