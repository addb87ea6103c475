// NAME
//   smtp_client.cpp - hand one message to an SMTP server, primary then backups
// SUMMARY
//   The smallest client RFC 5321 allows: no pipelining, no extensions
//   used beyond EHLO itself (HELO after a refused EHLO), no TLS. Alert
//   mail goes to a relay of the administrator's choosing, usually the
//   local MTA, so plain TCP on loopback is the common case.
//   Each step's deadline is the smaller of now + SmtpTimeouts::step and
//   the caller's overall deadline, so a silent or trickling server can
//   hold the alert thread no longer than the caller allows.
// DIAGNOSTICS
//   A server fails on: connect error or timeout, EOF, a reply line
//   over 1000 bytes, more than 100 reply lines, a malformed code, a code
//   other than the expected class (4xx, 5xx), or every recipient refused.
//   Its error line names the server, the step and the reply.
#include "icap-milter/net/smtp_client.hpp"

#include "icap-milter/log/log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace icapm {

namespace {

constexpr std::size_t kMaxLine = 1000;    // RFC 5321 says 512; be lenient, still bounded
constexpr int kMaxReplyLines = 100;
constexpr std::size_t kMaxReplyText = 400; // kept for logs

// step_deadline - the next step's deadline: now + step, but not past overall.
Deadline step_deadline(const SmtpTimeouts& t, Deadline overall) {
    return std::min(SteadyClock::now() + t.step, overall);
}

// plain_address - a mail address that may go between < and > on a command line.
bool plain_address(std::string_view a) {
    return a.size() <= 254 &&
           std::all_of(a.begin(), a.end(), [](char c) { return c > 32 && c < 127 && c != '<' && c != '>'; });
}

// Session - one server's conversation.
class Session {
public:
    Session(Connection& c, const SmtpTimeouts& t, Deadline overall) : conn_(c), reader_(c), t_(t), overall_(overall) {}

    // command - send one line (CRLF added) and read the reply.
    SmtpReply command(std::string_view line) {
        const Deadline d = step_deadline(t_, overall_);
        IoResult w = write_all(conn_, std::string(line) + "\r\n", d);
        if (w.status != IoStatus::Ok) return SmtpReply{0, {}, w.status == IoStatus::Timeout ? "timed out" : w.error};
        return reader_.read(d);
    }
    // data - send the stuffed body and read the final reply.
    SmtpReply data(std::string_view stuffed) {
        const Deadline d = step_deadline(t_, overall_);
        IoResult w = write_all(conn_, stuffed, d);
        if (w.status != IoStatus::Ok) return SmtpReply{0, {}, w.status == IoStatus::Timeout ? "timed out" : w.error};
        return reader_.read(d);
    }
    // greeting - the server's first reply.
    SmtpReply greeting() { return reader_.read(step_deadline(t_, overall_)); }

private:
    Connection& conn_;
    SmtpReplyReader reader_;
    SmtpTimeouts t_;
    Deadline overall_;
};

// describe - "451 text" or the transport error.
std::string describe(const SmtpReply& r) {
    if (r.code == 0) return r.error.empty() ? "no reply" : r.error;
    return std::to_string(r.code) + (r.text.empty() ? "" : " " + r.text);
}

// transact - one server, start to end; "" when it took the message.
std::string transact(const SmtpEndpoint& ep, const SmtpEnvelope& env, std::string_view stuffed,
                     const SmtpTimeouts& t, Deadline overall, std::vector<std::string>* refused) {
    std::string error;
    auto conn = connect_plain(ep.host, ep.port, std::min(SteadyClock::now() + t.connect, overall), &error);
    if (!conn) return error; // "host:port: connect: why" already
    Session s(*conn, t, overall);
    auto fail = [&](const char* step, const SmtpReply& r) {
        if (r.code != 0) (void)s.command("QUIT"); // polite; bounded like every step
        return std::string(step) + ": " + describe(r);
    };
    SmtpReply r = s.greeting();
    if (r.code != 220) return fail("greeting", r);
    r = s.command("EHLO " + env.helo);
    if (r.code == 0) return fail("EHLO", r);
    if (r.code / 100 == 5) { // an old server: HELO
        r = s.command("HELO " + env.helo);
        if (r.code / 100 != 2) return fail("HELO", r);
    } else if (r.code / 100 != 2) {
        return fail("EHLO", r);
    }
    r = s.command("MAIL FROM:<" + env.from + ">");
    if (r.code / 100 != 2) return fail("MAIL FROM", r);
    std::size_t accepted = 0;
    std::string last_refusal;
    for (const auto& rcpt : env.recipients) {
        r = s.command("RCPT TO:<" + rcpt + ">");
        if (r.code == 0) return fail("RCPT TO", r);
        if (r.code / 100 == 2) {
            ++accepted;
        } else {
            refused->push_back(rcpt);
            last_refusal = "RCPT TO <" + rcpt + ">: " + describe(r);
        }
    }
    if (accepted == 0) {
        refused->clear();
        (void)s.command("QUIT");
        return last_refusal.empty() ? "no recipients" : last_refusal;
    }
    r = s.command("DATA");
    if (r.code != 354) {
        refused->clear();
        return fail("DATA", r);
    }
    r = s.data(stuffed);
    if (r.code / 100 != 2) {
        refused->clear();
        return fail("end of DATA", r);
    }
    (void)s.command("QUIT"); // the message is taken; the reply does not matter
    conn->shutdown();
    return {};
}

} // namespace

// str - host and port, IPv6 literals in brackets.
std::string SmtpEndpoint::str() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

// parse_smtp_endpoint - host[:port], [v6]:port; host names of DNS characters.
std::optional<SmtpEndpoint> parse_smtp_endpoint(std::string_view text, std::string* why) {
    SmtpEndpoint ep;
    std::string_view host = text, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) {
            *why = "'" + std::string(text) + "': missing ]";
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                *why = "'" + std::string(text) + "' is not [ADDRESS]:PORT";
                return std::nullopt;
            }
            port = rest.substr(1);
        }
    } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
    }
    bool host_ok = !host.empty() && host.size() <= 253 && std::all_of(host.begin(), host.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
               c == '_' || c == ':';
    });
    if (!host_ok) {
        *why = "'" + std::string(text) + "' is not HOST:PORT";
        return std::nullopt;
    }
    ep.host = std::string(host);
    if (!port.empty() || (text.size() && text.back() == ':')) {
        unsigned p = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) {
            *why = "'" + std::string(text) + "': bad port";
            return std::nullopt;
        }
        ep.port = static_cast<std::uint16_t>(p);
    }
    return ep;
}

// error_text - every server's failure on one line.
std::string SmtpResult::error_text() const {
    std::string out;
    for (const auto& e : errors) out += (out.empty() ? "" : "; ") + e;
    return out;
}

// line - gather bytes up to LF; bounded by kMaxLine.
bool SmtpReplyReader::line(Deadline deadline, std::string* out, std::string* error) {
    while (true) {
        auto lf = buf_.find('\n');
        if (lf != std::string::npos) {
            if (lf > kMaxLine) {
                *error = "reply line longer than " + std::to_string(kMaxLine) + " bytes";
                return false;
            }
            std::size_t end = (lf > 0 && buf_[lf - 1] == '\r') ? lf - 1 : lf;
            out->assign(buf_, 0, end);
            buf_.erase(0, lf + 1);
            return true;
        }
        if (buf_.size() > kMaxLine) {
            *error = "reply line longer than " + std::to_string(kMaxLine) + " bytes";
            return false;
        }
        char chunk[1024];
        IoResult r = read_until(conn_, std::span<char>(chunk, sizeof chunk), deadline);
        if (r.status == IoStatus::Ok) {
            buf_.append(chunk, r.bytes);
            continue;
        }
        *error = r.status == IoStatus::Timeout ? "timed out" : r.status == IoStatus::Eof ? "connection closed" : r.error;
        return false;
    }
}

// read - lines until one without '-' after the code; all codes equal.
SmtpReply SmtpReplyReader::read(Deadline deadline) {
    SmtpReply reply;
    int code = 0;
    for (int n = 0; n < kMaxReplyLines; ++n) {
        std::string text;
        if (!line(deadline, &text, &reply.error)) return SmtpReply{0, {}, reply.error};
        int this_code = 0;
        bool ok = text.size() >= 3 && text[0] >= '2' && text[0] <= '5' && std::isdigit(static_cast<unsigned char>(text[1])) &&
                  std::isdigit(static_cast<unsigned char>(text[2])) && (text.size() == 3 || text[3] == ' ' || text[3] == '-');
        if (ok) this_code = (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
        if (!ok || (code != 0 && this_code != code))
            return SmtpReply{0, {}, "malformed reply: " + sanitize(text, 80)};
        code = this_code;
        if (text.size() > 4 && reply.text.size() < kMaxReplyText)
            reply.text += (reply.text.empty() ? "" : " / ") + sanitize(std::string_view(text).substr(4), 160);
        if (text.size() == 3 || text[3] == ' ') {
            reply.code = code;
            if (reply.text.size() > kMaxReplyText) reply.text.resize(kMaxReplyText);
            return reply;
        }
    }
    return SmtpReply{0, {}, "reply of more than " + std::to_string(kMaxReplyLines) + " lines"};
}

// dot_stuff - CRLF everywhere, leading dots doubled, the end marker added.
std::string dot_stuff(std::string_view message) {
    std::string out;
    out.reserve(message.size() + message.size() / 32 + 8);
    bool line_start = true;
    for (std::size_t i = 0; i < message.size(); ++i) {
        char c = message[i];
        if (c == '\r' && i + 1 < message.size() && message[i + 1] == '\n') continue; // the \n writes CRLF
        if (c == '\r' || c == '\n') {
            out += "\r\n";
            line_start = true;
            continue;
        }
        if (line_start && c == '.') out += '.';
        out += c;
        line_start = false;
    }
    if (!line_start) out += "\r\n";
    out += ".\r\n";
    return out;
}

// smtp_send - servers in order until one takes the message.
SmtpResult smtp_send(const std::vector<SmtpEndpoint>& servers, const SmtpEnvelope& envelope,
                     std::string_view message, const SmtpTimeouts& timeouts, Deadline overall) {
    SmtpResult result;
    bool usable = plain_address(envelope.from) && !envelope.recipients.empty() &&
                  std::all_of(envelope.recipients.begin(), envelope.recipients.end(),
                              [](const std::string& a) { return !a.empty() && plain_address(a); }) &&
                  !envelope.helo.empty() && plain_address(envelope.helo);
    if (!usable) {
        result.errors.push_back("bad envelope (sender, recipients or HELO name)");
        return result;
    }
    const std::string stuffed = dot_stuff(message);
    for (const auto& ep : servers) {
        if (SteadyClock::now() >= overall) {
            result.errors.push_back(ep.str() + ": not tried, out of time");
            continue;
        }
        std::vector<std::string> refused;
        std::string why = transact(ep, envelope, stuffed, timeouts, overall, &refused);
        if (why.empty()) {
            result.ok = true;
            result.server = ep.str();
            result.refused = std::move(refused);
            return result;
        }
        result.errors.push_back(why.rfind(ep.str() + ":", 0) == 0 ? why : ep.str() + ": " + why);
    }
    return result;
}

} // namespace icapm
