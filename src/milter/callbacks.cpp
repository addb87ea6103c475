// NAME
//   callbacks.cpp - the libmilter callbacks (thin extern "C" trampolines)
// SUMMARY
//   Each xxfi_* function only unwraps the context and calls a C++ handler
//   inside guard(), which catches every exception and answers with the
//   configured OnFail action. Connection state lives in smfi_getpriv;
//   message state is reset at MAIL FROM, end of message, abort and close.
//   Bypass lists (policy/bypass.hpp) are decided once when the message's
//   data starts, from the client address (connect), {auth_authen} (MAIL
//   FROM; requested with smfi_setsymlist when SkipAuthenticated is on),
//   the sender and every recipient; a skipped message is not spooled and
//   ends Skipped. MaxMessageSize stops spooling at that size.
// DIAGNOSTICS
//   Spool failures during header/body are remembered and answered at end
//   of message (header and body replies may be negotiated away). Every
//   message ends with exactly one summary line at info level. Incoming
//   X-Virus-* headers are always removed; token headers are removed
//   unless their token verified (end_of_message.cpp decides), and always
//   when scan tokens are off. An MTA that does not allow the header
//   actions we need gets an error line at negotiation and the OnFail
//   answer for every message of that connection, never unscanned
//   delivery (OnFail accept becomes tempfail there: accepting relies on
//   exactly the header edits the MTA refused).
#include "icap-milter/milter/callbacks.hpp"
#include "icap-milter/common/ascii.hpp"
#include "icap-milter/common/date_text.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/milter/context.hpp"
#include "icap-milter/milter/end_of_message.hpp"
#include "icap-milter/milter/keep.hpp"
#include "icap-milter/milter/plan.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap-milter/token/token.hpp"

#include <arpa/inet.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

namespace icapm {

namespace {

// Our headers, lower case: incoming copies are removed, never trusted.
constexpr std::array<const char*, 3> kOwnHeaders = {"x-virus-scanned", "x-virus-status", "x-icap-milter-released"};
// Token header values kept per message: one is all a valid message has;
// more are only counted (they are all removed anyway).
constexpr std::size_t kMaxTokenHeaders = 4;
// Recipients kept per message (Postfix's smtpd_recipient_limit default).
constexpr std::size_t kMaxRcpts = 1000;

std::atomic<unsigned long> open_connections{0};

// ConnState - connection context plus what negotiation settled.
struct ConnState : ConnectionContext {
    Negotiation nr;
    // Set when the MTA lacks something we need: every message gets this.
    std::optional<Decision> refuse;
};

// state - the connection state of ctx (nullptr before negotiate/connect).
ConnState* state(SMFICTX* ctx) { return static_cast<ConnState*>(smfi_getpriv(ctx)); }

// ensure_state - create the connection state on first use.
ConnState* ensure_state(SMFICTX* ctx) {
    ConnState* st = state(ctx);
    if (!st) {
        auto fresh = std::make_unique<ConnState>();
        fresh->runtime = current_runtime();
        if (smfi_setpriv(ctx, fresh.get()) != MI_SUCCESS) throw std::runtime_error("smfi_setpriv failed");
        st = fresh.release(); // owned by libmilter's context until xxfi_close
        ++open_connections;
    }
    return st;
}

// to_smfis - the libmilter answer for an action.
sfsistat to_smfis(Action a) {
    switch (a) {
    case Action::Accept: return SMFIS_CONTINUE;
    case Action::Reject: return SMFIS_REJECT;
    case Action::Discard: return SMFIS_DISCARD;
    case Action::Tempfail: return SMFIS_TEMPFAIL;
    case Action::Hold:
    case Action::Redirect:
    case Action::Notify:
    case Action::Clean: return SMFIS_CONTINUE; // the plan's edits did the work
    }
    return SMFIS_TEMPFAIL;
}

// fail_action - the OnFail answer for ctx (tempfail when nothing is known).
sfsistat fail_action(SMFICTX* ctx) {
    const ConnState* st = state(ctx);
    auto rt = st && st->runtime ? st->runtime : current_runtime();
    return rt ? to_smfis(rt->config->on_fail) : SMFIS_TEMPFAIL;
}

// guard - run a handler; any exception becomes a logged OnFail answer.
template <typename F>
sfsistat guard(SMFICTX* ctx, const char* where, F&& handler) noexcept {
    try {
        return handler();
    } catch (const std::exception& e) {
        try {
            spdlog::error("{}: internal error: {}", where, sanitize(e.what()));
        } catch (...) {
        }
    } catch (...) {
        try {
            spdlog::error("{}: internal error (unknown exception)", where);
        } catch (...) {
        }
    }
    try {
        return fail_action(ctx);
    } catch (...) {
        return SMFIS_TEMPFAIL;
    }
}

// symbol - a macro's value, or "" when the MTA did not send it.
std::string symbol(SMFICTX* ctx, const char* name) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? std::string(v) : std::string();
}

// note_queue_id - remember the queue id once the MTA gives it.
void note_queue_id(SMFICTX* ctx, MessageContext& msg) {
    if (msg.queue_id != "NOQUEUE") return;
    std::string q = symbol(ctx, "i");
    if (!q.empty()) msg.queue_id = sanitize(q, 64);
}

// check_bypass - decide the bypass lists once, when the message's data
// starts (every recipient is known by then).
void check_bypass(const ConnState& st, MessageContext& msg) {
    if (msg.bypass_checked) return;
    msg.bypass_checked = true;
    BypassInput in;
    in.client = st.client_ip;
    in.auth_authen = msg.auth_authen;
    in.sender = msg.sender;
    in.rcpts = msg.rcpts;
    in.rcpts_complete = msg.rcpts.size() == msg.recipients;
    msg.bypass = match_bypass(*st.runtime->config, in);
}

// spool_write - append to the message spool; failure is answered at end
// of message. A skipped message is not spooled, nor one past
// MaxMessageSize any further (it is not scanned either way).
void spool_write(const Config& c, MessageContext& msg, std::string_view data) {
    msg.received += data.size();
    if (msg.bypass) return;
    if (c.max_message_size != 0 && msg.received > c.max_message_size) msg.too_big = true;
    if (msg.spool_failed || msg.too_big) return;
    try {
        msg.spool->append(data);
    } catch (const std::exception& e) {
        msg.spool_failed = true;
        msg.spool_error = e.what();
        spdlog::error("{}: Job-{}: spool write failed: {}", msg.queue_id, msg.job, sanitize(e.what()));
    }
}

// rt_config - the configuration of a connection.
const Config& rt_config(const ConnState& st) { return *st.runtime->config; }

// header_value - what to pass to smfi_addheader (leading space if negotiated).
std::string header_value(const ConnState& st, std::string value) {
    if (value.size() > 900) value.resize(900);
    return st.leading_space ? " " + value : value;
}

// plan_for - the plan of a decided message on this connection.
Plan plan_for(const ConnState& st, const MessageContext& msg, const Outcome& out) {
    const Runtime& rt = *st.runtime;
    PlanInput in;
    in.config = rt.config.get();
    in.outcome = &out;
    in.hostname = rt.hostname;
    in.version = PACKAGE_VERSION;
    in.queue_id = msg.queue_id;
    in.job = msg.job;
    in.sender = msg.sender;
    in.rcpts = msg.rcpts;
    in.rcpts_complete = msg.rcpts.size() == msg.recipients;
    in.subject = msg.subject;
    in.strip = msg.strip;
    in.tokens_enabled = rt.tokens.enabled();
    in.granted = st.nr.actions;
    in.date = mail_date_text(std::time(nullptr));
    in.header_counts = msg.header_counts;
    const Action a = out.decision.action;
    if (a != Action::Notify && a != Action::Clean) return make_plan(in);
    // notify / clean: the new body. Clean falls back to notify where the
    // infected parts cannot be located beyond doubt (or only the whole
    // message was found infected).
    const Config& c = *rt.config;
    const TemplateFields fields = template_fields(in);
    std::optional<RebuiltMessage> rebuilt;
    bool fell_back = false;
    if (a == Action::Clean) {
        std::vector<Replacement> repl;
        for (const auto& item : out.infected_items) {
            // The whole-message views repeat what the parts hold; a virus
            // only they found has no part to remove (repl stays empty:
            // notify).
            if (is_view_id(item.part_id)) continue;
            TemplateFields part = fields;
            part.files = {item.filename.empty() ? "part " + item.part_id : item.filename};
            part.viruses = item.threats;
            repl.push_back({item.part_id, render(c.clean_template, part, true)});
        }
        // OnBlocked clean: the banned parts go too (once each).
        if (c.on_blocked == Action::Clean)
            for (const auto& b : out.blocked_items) {
                if (std::any_of(repl.begin(), repl.end(), [&](const Replacement& r) { return r.part_id == b.part_id; }))
                    continue;
                TemplateFields part = fields;
                part.files = {b.filename.empty() ? "part " + b.part_id : b.filename};
                part.viruses = {"a blocked file type (" + b.rule + ")"};
                repl.push_back({b.part_id, render(c.clean_template, part, true)});
            }
        try {
            if (!repl.empty()) rebuilt = clean_message(*msg.spool, repl);
        } catch (const std::exception& e) {
            spdlog::error("{}: Job-{}: clean: {}", msg.queue_id, msg.job, sanitize(e.what()));
        }
        if (!rebuilt) {
            fell_back = true;
            spdlog::info("{}: Job-{}: clean: the infected parts cannot be located beyond doubt; notify instead",
                         msg.queue_id, msg.job);
        }
    }
    if (!rebuilt) rebuilt = notify_message(render(c.notify_template, fields, true));
    in.rebuilt = &*rebuilt;
    Plan plan = make_plan(in);
    if (fell_back && plan.action == Action::Clean) plan.action = Action::Notify;
    return plan;
}

// apply - carry out the plan; returns the answer. A failed edit is
// logged; a failed recipient change or hold makes the answer tempfail
// (the message must not reach the original recipients unchanged).
sfsistat apply(SMFICTX* ctx, const ConnState& st, const MessageContext& msg, Plan& plan) {
    if (!plan.note.empty()) spdlog::error("{}: Job-{}: {}: tempfail instead", msg.queue_id, msg.job, plan.note);
    for (auto& e : plan.headers) {
        std::string value = header_value(st, e.value);
        int rc = MI_SUCCESS;
        switch (e.op) {
        case HeaderEdit::Op::Remove: rc = smfi_chgheader(ctx, e.name.data(), e.index, nullptr); break;
        case HeaderEdit::Op::Change: rc = smfi_chgheader(ctx, e.name.data(), e.index, value.data()); break;
        case HeaderEdit::Op::Add: rc = smfi_addheader(ctx, e.name.data(), value.data()); break;
        }
        if (rc != MI_SUCCESS) spdlog::warn("{}: could not edit header {} #{}", msg.queue_id, e.name, e.index);
    }
    bool failed = false;
    if (plan.body) {
        // libmilter sends a body change in pieces; each call appends.
        constexpr std::size_t kPiece = 65536;
        const std::string& b = *plan.body;
        for (std::size_t off = 0; off < b.size() && !failed; off += kPiece) {
            std::size_t n = std::min(kPiece, b.size() - off);
            failed = smfi_replacebody(ctx, reinterpret_cast<unsigned char*>(const_cast<char*>(b.data() + off)),
                                      static_cast<int>(n)) != MI_SUCCESS;
        }
    }
    for (auto& r : plan.add_rcpts) failed |= smfi_addrcpt(ctx, r.data()) != MI_SUCCESS;
    for (auto& r : plan.del_rcpts) failed |= smfi_delrcpt(ctx, r.data()) != MI_SUCCESS;
    if (!plan.quarantine_reason.empty())
        failed |= smfi_quarantine(ctx, plan.quarantine_reason.data()) != MI_SUCCESS;
    if (failed) {
        spdlog::error("{}: Job-{}: the MTA refused the new body, a recipient change or the hold; tempfail instead",
                      msg.queue_id, msg.job);
        plan.action = Action::Tempfail;
        plan.rcode = "451";
        plan.xcode = "4.7.1";
        plan.reply = "Message cannot be handled as configured, please try again later";
    }
    if (plan.action == Action::Reject || plan.action == Action::Tempfail) {
        // smfi_setreply treats '%' specially; plan replies never hold one.
        if (smfi_setreply(ctx, plan.rcode.data(), plan.xcode.data(), plan.reply.data()) != MI_SUCCESS)
            spdlog::warn("{}: smfi_setreply failed; the MTA's default reply is used", msg.queue_id);
    }
    return to_smfis(plan.action);
}

// ---- handlers (C++), called through guard() ----

// action_names - the SMFIF_* names of the bits in mask, "|"-separated.
std::string action_names(unsigned long mask) {
    static constexpr std::pair<unsigned long, const char*> names[] = {
        {SMFIF_ADDHDRS, "SMFIF_ADDHDRS"}, {SMFIF_CHGHDRS, "SMFIF_CHGHDRS"}, {SMFIF_CHGBODY, "SMFIF_CHGBODY"},
        {SMFIF_ADDRCPT, "SMFIF_ADDRCPT"}, {SMFIF_DELRCPT, "SMFIF_DELRCPT"}, {SMFIF_QUARANTINE, "SMFIF_QUARANTINE"}};
    std::string out;
    for (const auto& [bit, name] : names)
        if (mask & bit) out += (out.empty() ? "" : "|") + std::string(name);
    return out;
}

// refusal - the OnFail decision for every message of a connection whose
// MTA lacks what we need; accept becomes tempfail, since accepting an
// unscanned message relies on the very header edits the MTA refused.
Decision refusal(const Config& config, const std::string& missing) {
    const std::string reason = "the MTA does not allow " + missing;
    if (config.on_fail != Action::Accept) return fail_decision(config, reason);
    Config strict = config;
    strict.on_fail = Action::Tempfail;
    return fail_decision(strict, reason);
}

// request_macros - SkipAuthenticated needs {auth_authen} at MAIL FROM:
// ask for it (sendmail sends it only when asked; Postfix's
// milter_mail_macros has it by default). "i" stays in the list, since
// the list replaces the MTA's own for that stage.
void request_macros(SMFICTX* ctx, const Config& c, unsigned long offered, unsigned long* pf0) {
    if (!c.skip_authenticated) return;
    if (!(offered & SMFIF_SETSYMLIST)) {
        spdlog::warn("negotiate: the MTA takes no macro list (SMFIF_SETSYMLIST); SkipAuthenticated relies on it "
                     "sending {auth_authen} at MAIL FROM by itself");
        return;
    }
    *pf0 |= SMFIF_SETSYMLIST;
    if (smfi_setsymlist(ctx, SMFIM_ENVFROM, const_cast<char*>("i {auth_authen} {auth_type}")) != MI_SUCCESS)
        spdlog::warn("negotiate: smfi_setsymlist failed; SkipAuthenticated relies on the MTA's default macros");
    else
        spdlog::debug("negotiate: macros requested at MAIL FROM: i {auth_authen} {auth_type} (SkipAuthenticated)");
}

// on_negotiate - ask for exactly the actions used and skip unneeded steps;
// an MTA lacking a needed action keeps the connection but gets OnFail.
sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long* pf0, unsigned long* pf1,
                      unsigned long* pf2, unsigned long* pf3) {
    ConnState* st = ensure_state(ctx);
    st->nr = negotiate(f0, f1);
    st->leading_space = st->nr.leading_space;
    *pf0 = st->nr.actions;
    *pf1 = st->nr.steps;
    *pf2 = 0;
    *pf3 = 0;
    if (!st->runtime) st->runtime = current_runtime();
    if (st->runtime) request_macros(ctx, *st->runtime->config, f0, pf0);
    if (!st->nr.missing.empty()) {
        if (!st->runtime) st->runtime = current_runtime();
        if (!st->runtime) throw std::runtime_error("no configuration loaded");
        st->refuse = refusal(*st->runtime->config, st->nr.missing);
        spdlog::error("negotiate: the MTA does not allow {} (offered actions=0x{:x} protocol=0x{:x}); every "
                      "message of this connection gets action={}",
                      st->nr.missing, f0, f1, to_string(st->refuse->action));
    }
    return SMFIS_CONTINUE;
}

// refuse_message - answer a message on a connection that cannot be served.
sfsistat refuse_message(SMFICTX* ctx, const ConnState& st, const MessageContext& msg, const char* where) {
    const Decision& d = *st.refuse;
    std::string text = d.reply;
    if ((d.action == Action::Reject || d.action == Action::Tempfail) &&
        smfi_setreply(ctx, const_cast<char*>(d.rcode.c_str()), const_cast<char*>(d.xcode.c_str()), text.data()) !=
            MI_SUCCESS)
        spdlog::warn("{}: smfi_setreply failed; the MTA's default reply is used", msg.queue_id);
    counters().count_action(d.action);
    // The message's one summary line (the connection's error was logged at negotiation).
    spdlog::info("{}: Job-{}: from=<{}> rcpts={} status={} action={} reason=\"{}\" at={} client={}", msg.queue_id,
                 msg.job, msg.sender, msg.recipients, to_string(d.status), to_string(d.action),
                 sanitize_value(d.reason, 300), where, st.client);
    return to_smfis(d.action);
}

// on_connect - take the runtime snapshot for this SMTP session.
sfsistat on_connect(SMFICTX* ctx, const char* hostname, const char* addr_text, std::optional<IpAddress> ip) {
    ConnState* st = ensure_state(ctx);
    st->client_ip = ip;
    if (!st->runtime) st->runtime = current_runtime();
    if (!st->runtime) throw std::runtime_error("no configuration loaded");
    // Postfix style: host[addr]; an unresolved client already comes as "[addr]".
    const std::string host = sanitize(hostname ? hostname : "unknown", 128);
    st->client = host.starts_with("[") ? host : host + "[" + sanitize(addr_text, 64) + "]";
    return SMFIS_CONTINUE;
}

// on_envfrom - a new message starts; earlier message state is dropped.
sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    ConnState* st = ensure_state(ctx);
    if (!st->runtime) st->runtime = current_runtime();
    st->message = std::make_unique<MessageContext>(*st->runtime->config, st->runtime->spool_budget);
    std::string_view sender = argv && argv[0] ? argv[0] : "";
    if (sender.size() >= 2 && sender.front() == '<' && sender.back() == '>') sender = sender.substr(1, sender.size() - 2);
    st->message->sender = sanitize(sender, 256);
    st->message->auth_authen = sanitize(symbol(ctx, "{auth_authen}"), 256);
    note_queue_id(ctx, *st->message);
    if (st->refuse) {
        std::unique_ptr<MessageContext> msg = std::move(st->message);
        return refuse_message(ctx, *st, *msg, "mail");
    }
    return SMFIS_CONTINUE;
}

// on_envrcpt - count recipients, keep the first kMaxRcpts (redirect).
sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    ConnState* st = state(ctx);
    if (st && st->message) {
        ++st->message->recipients;
        if (argv && argv[0] && st->message->rcpts.size() < kMaxRcpts)
            st->message->rcpts.emplace_back(std::string_view(argv[0]).substr(0, 512));
        note_queue_id(ctx, *st->message);
    }
    return SMFIS_CONTINUE;
}

// on_header - spool the header line; count our own headers for removal.
sfsistat on_header(SMFICTX* ctx, const char* name, const char* value) {
    ConnState* st = state(ctx);
    if (!st || !st->message) throw std::runtime_error("header outside a message");
    MessageContext& msg = *st->message;
    check_bypass(*st, msg);
    const std::string lname = lower(name);
    for (const char* own : kOwnHeaders)
        if (lname == own) ++msg.strip[lname];
    if (lname == "x-icap-milter-released" && msg.release_id.empty())
        msg.release_id = std::string(trim(std::string_view(value).substr(0, 128)));
    if (lname == "subject" && !msg.subject) msg.subject = std::string(std::string_view(value).substr(0, 998));
    if ((lname.rfind("content-", 0) == 0 || lname == "mime-version") &&
        (msg.header_counts.size() < 32 || msg.header_counts.contains(lname)))
        ++msg.header_counts[lname];
    const Runtime& rt = *st->runtime;
    // Removed whether or not tokens are on: a later hop that trusts
    // tokens must never see one we did not check.
    if (lname == lower(rt.config->token_header)) ++msg.strip[lname];
    if (rt.tokens.enabled() && lname == lower(rt.config->token_header)) {
        if (msg.tokens.size() < kMaxTokenHeaders) {
            // Bounded: anything past kMaxTokenSize plus folding is refused by size anyway.
            std::string_view v(value);
            msg.tokens.emplace_back(v.substr(0, 2 * kMaxTokenSize));
        } else {
            msg.tokens.emplace_back(); // still "more than one"
            msg.tokens.resize(kMaxTokenHeaders + 1);
        }
    }
    // The MTA hands folded values over with bare LFs (Postfix keeps lines
    // LF-terminated inside); the spool is a CRLF message throughout, as
    // the message was on the wire.
    std::string line;
    line.reserve(std::strlen(name) + std::strlen(value) + 8);
    line.append(name).append(st->leading_space ? ":" : ": ");
    for (const char* p = value; *p; ++p) {
        if (*p == '\n' && (p == value || p[-1] != '\r')) line += '\r';
        line += *p;
    }
    line.append("\r\n");
    spool_write(rt_config(*st), msg, line);
    return st->nr.noreply_header ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

// end_headers - the blank line between headers and body, once.
void end_headers(const ConnState& st, MessageContext& msg) {
    check_bypass(st, msg);
    if (msg.in_body) return;
    msg.in_body = true;
    spool_write(rt_config(st), msg, "\r\n");
}

// on_body - spool a body chunk.
sfsistat on_body(SMFICTX* ctx, unsigned char* data, std::size_t len) {
    ConnState* st = state(ctx);
    if (!st || !st->message) throw std::runtime_error("body outside a message");
    end_headers(*st, *st->message);
    spool_write(rt_config(*st), *st->message, std::string_view(reinterpret_cast<const char*>(data), len));
    return st->nr.noreply_body ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

// on_eom - scan, decide, act, log; then forget the message.
sfsistat on_eom(SMFICTX* ctx) {
    ConnState* st = state(ctx);
    if (!st || !st->message) throw std::runtime_error("end of message without a message");
    std::unique_ptr<MessageContext> msg = std::move(st->message);
    note_queue_id(ctx, *msg);
    if (st->refuse) return refuse_message(ctx, *st, *msg, "eom");
    end_headers(*st, *msg);
    const Runtime& rt = *st->runtime;
    Outcome out = msg->bypass ? skipped_outcome(*msg) : process_message(rt, *msg, [ctx] { smfi_progress(ctx); });
    // A copy that `icap-milterctl quarantine release` re-injected goes
    // through once, as the administrator asked, and is not kept again.
    const bool released = !msg->bypass && release_claimed(rt, *msg);
    if (released) {
        ++counters().quarantine_released;
        out.decision.action = Action::Accept;
        out.decision.reason = "released from quarantine " + msg->release_id + " (" + out.decision.reason + ")";
    }
    Plan plan = plan_for(*st, *msg, out);
    std::string kept;
    if (!released && plan.action != Action::Tempfail) {
        try {
            kept = keep_copy(rt, *msg, out, plan.action, st->client);
        } catch (const std::exception& e) {
            ++counters().quarantine_errors;
            tempfail_plan(plan, "quarantine: the copy could not be written to " + rt.config->quarantine_directory +
                                    ": " + sanitize(e.what()));
        }
    }
    enforce_quarantine(rt);
    sfsistat answer = apply(ctx, *st, *msg, plan);
    if (!kept.empty()) out.token_log += (out.token_log.empty() ? "" : " ") + std::string("quarantine=") + kept;
    counters().count_action(plan.action);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                          msg->started)
                        .count();
    spdlog::info("{}: Job-{}: from=<{}> rcpts={} size={} parts={} verdicts=[{}] status={} action={} reason=\"{}\" "
                 "{}{}client={} ms={}",
                 msg->queue_id, msg->job, msg->sender, msg->recipients, msg->received, out.parts, out.parts_log,
                 to_string(out.decision.status), to_string(plan.action), sanitize_value(out.decision.reason, 300),
                 out.token_log, out.token_log.empty() ? "" : " ", st->client, ms);
    if (out.decision.status == MessageStatus::Infected) alert_infection(infection_alert(*msg, out, plan.action, st->client));
    return answer;
}

// on_abort - the MTA dropped the message; drop our state too.
sfsistat on_abort(SMFICTX* ctx) {
    if (ConnState* st = state(ctx)) st->message.reset();
    return SMFIS_CONTINUE;
}

// on_close - end of the SMTP session: free the connection state.
sfsistat on_close(SMFICTX* ctx) {
    std::unique_ptr<ConnState> st(state(ctx));
    smfi_setpriv(ctx, nullptr);
    if (st) --open_connections;
    return SMFIS_CONTINUE;
}

} // namespace

} // namespace icapm

// ---- extern "C" trampolines ----
extern "C" {

static sfsistat xxfi_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                               unsigned long* pf0, unsigned long* pf1, unsigned long* pf2, unsigned long* pf3) {
    return icapm::guard(ctx, "negotiate", [&] { return icapm::on_negotiate(ctx, f0, f1, pf0, pf1, pf2, pf3); });
}
static sfsistat xxfi_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* addr) {
    char text[64] = "unknown";
    std::optional<icapm::IpAddress> ip = icapm::ip_from_sockaddr(addr);
    if (addr && addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(addr)->sin_addr, text, sizeof text);
    else if (addr && addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(addr)->sin6_addr, text, sizeof text);
    else if (addr)
        std::strcpy(text, "local");
    return icapm::guard(ctx, "connect", [&] { return icapm::on_connect(ctx, hostname, text, ip); });
}
static sfsistat xxfi_envfrom(SMFICTX* ctx, char** argv) {
    return icapm::guard(ctx, "envfrom", [&] { return icapm::on_envfrom(ctx, argv); });
}
static sfsistat xxfi_envrcpt(SMFICTX* ctx, char** argv) {
    return icapm::guard(ctx, "envrcpt", [&] { return icapm::on_envrcpt(ctx, argv); });
}
static sfsistat xxfi_header(SMFICTX* ctx, char* name, char* value) {
    return icapm::guard(ctx, "header", [&] { return icapm::on_header(ctx, name, value); });
}
static sfsistat xxfi_body(SMFICTX* ctx, unsigned char* data, size_t len) {
    return icapm::guard(ctx, "body", [&] { return icapm::on_body(ctx, data, len); });
}
static sfsistat xxfi_eom(SMFICTX* ctx) {
    return icapm::guard(ctx, "eom", [&] { return icapm::on_eom(ctx); });
}
static sfsistat xxfi_abort(SMFICTX* ctx) {
    return icapm::guard(ctx, "abort", [&] { return icapm::on_abort(ctx); });
}
static sfsistat xxfi_close(SMFICTX* ctx) {
    return icapm::guard(ctx, "close", [&] { return icapm::on_close(ctx); });
}

} // extern "C"

namespace icapm {

// negotiate - request what apply() uses; name what the MTA lacks.
// Protocol steps need no check: the MTA skips only the steps a milter
// asks it to skip, and we never ask to skip MAIL, headers, body or end
// of message. Actions are another matter: an MTA may withhold them.
Negotiation negotiate(unsigned long mta_actions, unsigned long mta_steps) {
    // apply() adds our status and token headers and removes forged ones.
    constexpr unsigned long need_actions = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    constexpr unsigned long want_actions =
        need_actions | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_QUARANTINE;
    Negotiation n;
    n.actions = want_actions & mta_actions;
    n.missing = action_names(need_actions & ~mta_actions);
    // DATA is deliberately not skipped: with SMFIP_NODATA Postfix flushes
    // the DATA macros alone, its Nagle then holds the header packet until
    // our delayed ACK (~40 ms per message on inet: sockets, measured).
    // Answering DATA acknowledges at once; TCP_NODELAY on the listener
    // (daemon.cpp) covers our own replies.
    for (unsigned long s : {SMFIP_NOHELO, SMFIP_NOUNKNOWN, SMFIP_NOEOH})
        if (mta_steps & s) n.steps |= s;
    if (mta_steps & SMFIP_HDR_LEADSPC) {
        n.steps |= SMFIP_HDR_LEADSPC;
        n.leading_space = true;
    }
    if (mta_steps & SMFIP_NR_HDR) {
        n.steps |= SMFIP_NR_HDR;
        n.noreply_header = true;
    }
    if (mta_steps & SMFIP_NR_BODY) {
        n.steps |= SMFIP_NR_BODY;
        n.noreply_body = true;
    }
    return n;
}

// active_connections - sessions between negotiate/connect and close.
unsigned long active_connections() noexcept { return open_connections.load(); }

// milter_register - describe the callbacks and flags to libmilter.
bool milter_register() {
    static struct smfiDesc desc = {};
    desc.xxfi_name = const_cast<char*>("icap-milter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_CHGBODY | SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_QUARANTINE;
    desc.xxfi_connect = xxfi_connect;
    desc.xxfi_envfrom = xxfi_envfrom;
    desc.xxfi_envrcpt = xxfi_envrcpt;
    desc.xxfi_header = xxfi_header;
    desc.xxfi_body = xxfi_body;
    desc.xxfi_eom = xxfi_eom;
    desc.xxfi_abort = xxfi_abort;
    desc.xxfi_close = xxfi_close;
    desc.xxfi_negotiate = xxfi_negotiate;
    if (smfi_register(desc) != MI_SUCCESS) {
        spdlog::critical("smfi_register failed");
        return false;
    }
    return true;
}

} // namespace icapm
