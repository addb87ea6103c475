// NAME
//   smtp_client.hpp - a small SMTP client for the daemon's alert mail
// SUMMARY
//   smtp_send() hands one message to the first of a list of servers that
//   takes it (primary, then backups), over plain TCP: greeting, EHLO (HELO
//   when EHLO is refused), MAIL FROM, RCPT TO per recipient, DATA with the
//   message dot-stuffed and its line ends made CRLF, then QUIT. Every step
//   waits with poll() under its own deadline and under the overall one.
// DIAGNOSTICS
//   Nothing throws for network trouble: SmtpResult says which server took
//   the message, or why each one did not ("127.0.0.1:25: MAIL FROM: 451
//   4.3.0 try later"). Replies are bounded (line length, line count).
#pragma once

#include "icap-milter/net/socket.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// SmtpEndpoint - one server: a host name or address literal and a port.
struct SmtpEndpoint {
    std::string host;
    std::uint16_t port = 25;
    // str - "host:port", "[v6]:port".
    std::string str() const;
};

// parse_smtp_endpoint - "host", "host:port", "[v6addr]:port"; nullopt and *why on bad text.
std::optional<SmtpEndpoint> parse_smtp_endpoint(std::string_view text, std::string* why);

// SmtpEnvelope - who speaks, from whom, to whom.
struct SmtpEnvelope {
    std::string helo;                    // our name for EHLO/HELO
    std::string from;                    // MAIL FROM address ("" = null sender <>)
    std::vector<std::string> recipients; // RCPT TO addresses
};

// SmtpTimeouts - per-step limits (connect; each command and its reply).
struct SmtpTimeouts {
    std::chrono::milliseconds connect{10000};
    std::chrono::milliseconds step{30000};
};

// SmtpResult - what smtp_send did.
struct SmtpResult {
    bool ok = false;
    std::string server;                  // the server that accepted the message
    std::vector<std::string> errors;     // one line per server that failed, in order
    std::vector<std::string> refused;    // recipients refused by the accepting server
    // error_text - the errors joined with "; ".
    std::string error_text() const;
};

// SmtpReply - one (possibly multiline) reply.
struct SmtpReply {
    int code = 0;         // 200-599; 0 when no valid reply was read
    std::string text;     // the lines' texts joined with " / ", bounded
    std::string error;    // transport or syntax problem when code == 0
};

// SmtpReplyReader - reads replies off a connection, bounding every line.
class SmtpReplyReader {
public:
    explicit SmtpReplyReader(Connection& c) noexcept : conn_(c) {}
    // read - the next reply, waiting until deadline.
    SmtpReply read(Deadline deadline);

private:
    // line - one line without its CRLF; false and *error on failure.
    bool line(Deadline deadline, std::string* out, std::string* error);
    Connection& conn_;
    std::string buf_;
};

// dot_stuff - the message as DATA content: CRLF line ends, a '.' doubled
// at the start of a line, a final CRLF, then ".\r\n".
std::string dot_stuff(std::string_view message);

// smtp_send - deliver message to the first server in servers that takes
// it; each step is bounded by timeouts and by overall.
SmtpResult smtp_send(const std::vector<SmtpEndpoint>& servers, const SmtpEnvelope& envelope,
                     std::string_view message, const SmtpTimeouts& timeouts, Deadline overall);

} // namespace icapm
