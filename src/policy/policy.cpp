// NAME
//   policy.cpp - verdicts to actions
// SUMMARY
//   Each category present (infected, failed, unscannable, ambiguous MIME)
//   proposes its configured action; the strictest wins (reject > discard
//   > hold > redirect > notify > tempfail > clean > accept), so a known
//   virus is never accepted because another part failed, and a failed
//   part is never accepted because another was clean. Hold, redirect and
//   notify rank above tempfail: none lets the recipients see the
//   message's content; clean ranks below it, since it delivers the parts
//   that are not infected, a failed one too. The status ranks Infected, then Blocked
//   (a banned name or type is a finding, like a virus), then Ambiguous (a
//   property of the whole message, whatever its parts), then Unscanned.
// DIAGNOSTICS
//   None: pure function of its inputs.
#include "icap-milter/policy/policy.hpp"

#include <algorithm>

namespace icapm {

namespace {

// severity - rank used to pick the strictest proposed action.
int severity(Action a) {
    switch (a) {
    case Action::Accept: return 0;
    case Action::Clean: return 1;
    case Action::Tempfail: return 2;
    case Action::Notify: return 3;
    case Action::Redirect: return 4;
    case Action::Hold: return 5;
    case Action::Discard: return 6;
    case Action::Reject: return 7;
    }
    return 1;
}

// set_reply - fill the SMTP reply for a reject or tempfail; detail is
// the enhanced status code's subject.detail ("7.1": security, "6.0":
// media, RFC 3463).
void set_reply(Decision& d, const std::string& reject_text, const std::string& tempfail_text,
               const char* detail = "7.1") {
    if (d.action == Action::Reject) {
        d.rcode = "550";
        d.xcode = std::string("5.") + detail;
        d.reply = reject_text;
    } else if (d.action == Action::Tempfail) {
        d.rcode = "451";
        d.xcode = std::string("4.") + detail;
        d.reply = tempfail_text;
    }
}

} // namespace

// to_string - the X-Virus-Status words.
const char* to_string(MessageStatus s) noexcept {
    switch (s) {
    case MessageStatus::Clean: return "Clean";
    case MessageStatus::Infected: return "Infected";
    case MessageStatus::Unscanned: return "Unscanned";
    case MessageStatus::Ambiguous: return "Ambiguous";
    case MessageStatus::Blocked: return "Blocked";
    case MessageStatus::Skipped: return "Skipped";
    }
    return "Unscanned";
}

// reply_safe - restrict to characters that cannot break an SMTP reply.
// Single spaces between words are kept ("blocked by scanner").
std::string reply_safe(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (out.size() >= 100) break;
        if (c == ' ') {
            if (!out.empty() && out.back() != ' ') out.push_back(' ');
            continue;
        }
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '.' || c == '_' || c == ':' || c == '/' || c == '+' || c == '-';
        out.push_back(ok ? c : '_');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// reply_text - free text (a MIME finding) fit for an SMTP reply: printable
// ASCII without '%' (smfi_setreply formats it), at most 160 chars.
std::string reply_text(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (out.size() >= 160) break;
        auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 32 && u < 127 && c != '%' ? c : '_');
    }
    return out;
}

// fail_decision - OnFail for problems that happen before or around scanning.
Decision fail_decision(const Config& config, std::string reason) {
    Decision d;
    d.action = config.on_fail;
    d.status = MessageStatus::Unscanned;
    d.reason = std::move(reason);
    set_reply(d, "Message could not be scanned for viruses", "Virus scan failed, please try again later");
    return d;
}

// skip_decision - accepted unscanned: the status says so.
Decision skip_decision(std::string why) {
    Decision d;
    d.action = Action::Accept;
    d.status = MessageStatus::Skipped;
    d.reason = std::move(why);
    return d;
}

// decide - strictest action among the categories present.
Decision decide(const Config& config, const std::vector<Verdict>& verdicts, std::string_view ambiguity,
                const std::vector<BlockedPart>& blocked) {
    bool infected = false, failed = false, unscannable = false;
    std::string fail_reason, unscannable_reason;
    Decision d;
    for (const auto& v : verdicts) {
        switch (v.kind) {
        case VerdictKind::Infected:
            infected = true;
            for (const auto& t : v.threats) {
                std::string safe = reply_safe(t);
                if (std::find(d.threats.begin(), d.threats.end(), safe) == d.threats.end())
                    d.threats.push_back(std::move(safe));
            }
            break;
        case VerdictKind::Error:
            failed = true;
            if (fail_reason.empty()) fail_reason = v.reason;
            break;
        case VerdictKind::Unscannable:
            unscannable = true;
            if (unscannable_reason.empty()) unscannable_reason = v.reason;
            break;
        case VerdictKind::Clean:
            break;
        }
    }
    if (infected && d.threats.empty()) d.threats.push_back("unknown");

    d.action = Action::Accept;
    auto propose = [&](Action a) {
        if (severity(a) > severity(d.action)) d.action = a;
    };
    if (infected) propose(config.on_infected);
    if (failed) propose(config.on_fail);
    if (unscannable) propose(config.on_unscannable);
    const bool ambiguous = !ambiguity.empty();
    if (ambiguous) propose(config.on_ambiguous);
    if (!blocked.empty()) propose(config.on_blocked);

    if (infected) {
        d.status = MessageStatus::Infected;
        std::string names;
        for (const auto& t : d.threats) names += (names.empty() ? "" : ", ") + t;
        d.reason = "infected: " + names;
        set_reply(d, "Virus found: " + names, "Virus found: " + names + ", message deferred");
    } else if (!blocked.empty()) {
        const BlockedPart& b = blocked.front();
        const std::string what = b.filename.empty() ? "part " + b.part_id : b.filename;
        d.status = MessageStatus::Blocked;
        d.reason = "blocked attachment name=\"" + what + "\" rule=" + b.rule;
        std::string name = reply_text(what);
        if (name.size() > 100) name.resize(100);
        set_reply(d, "Blocked attachment: " + name + " (" + reply_safe(b.rule) + ")",
                  "Blocked attachment: " + name + ", please try again later");
    } else if (ambiguous) {
        d.status = MessageStatus::Ambiguous;
        d.reason = "ambiguous MIME: " + std::string(ambiguity);
        std::string why = reply_text(ambiguity);
        set_reply(d, "Ambiguous MIME structure: " + why,
                  "Ambiguous MIME structure: " + why + ", please try again later", "6.0");
    } else if (failed) {
        d.status = MessageStatus::Unscanned;
        d.reason = "scan failed: " + fail_reason;
        set_reply(d, "Message could not be scanned for viruses", "Virus scan failed, please try again later");
    } else if (unscannable) {
        d.status = MessageStatus::Unscanned;
        d.reason = "unscannable: " + unscannable_reason;
        set_reply(d, "Message contains content that cannot be scanned",
                  "Message contains content that cannot be scanned, please try again later");
    } else {
        d.status = MessageStatus::Clean;
        d.reason = "clean";
    }
    return d;
}

} // namespace icapm
