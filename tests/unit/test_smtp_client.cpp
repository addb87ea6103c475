// NAME
//   test_smtp_client.cpp - the alert SMTP client against a scripted server
// SUMMARY
//   A server thread on 127.0.0.1 (port 0) plays SMTP with replies set per
//   test: multiline EHLO, EHLO refused (HELO), 4xx and 5xx at each step,
//   refused recipients, silence, over-long lines, a closed primary port.
//   Each test checks what the client said on the wire as well as the
//   result, and the DATA bytes as received (dot-stuffing, CRLF).
#include "icap-milter/net/smtp_client.hpp"

#include "icap_script.hpp"

#include <doctest/doctest.h>

#include <map>
#include <mutex>

using namespace icapm;
using namespace icapm_test;
using namespace std::chrono_literals;

namespace {

// Dialog - one scripted server's replies and what it saw.
struct Dialog {
    std::string greeting = "220 test ESMTP\r\n";
    std::map<std::string, std::string> replies; // verb (EHLO, MAIL, RCPT, DATA, ".", QUIT) -> reply text
    std::mutex mu;
    std::vector<std::string> commands;
    std::string data; // DATA bytes as sent, up to and including the final dot line
    bool silent = false;

    // reply_for - the reply to verb: scripted, or a plain success.
    std::string reply_for(const std::string& verb) {
        if (auto it = replies.find(verb); it != replies.end()) return it->second;
        if (verb == "EHLO") return "250-test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";
        if (verb == "DATA") return "354 go on\r\n";
        if (verb == "QUIT") return "221 bye\r\n";
        return "250 ok\r\n";
    }
    // serve - the server side of one connection.
    void serve(Peer& p) {
        if (silent) {
            p.wait_activity(3s);
            return;
        }
        if (!p.send(greeting)) return;
        std::string line;
        while (p.read_until("\r\n", &line)) {
            std::string cmd = line.substr(0, line.size() - 2);
            std::string verb = cmd.substr(0, 4);
            {
                std::lock_guard lock(mu);
                commands.push_back(cmd);
            }
            std::string r = reply_for(verb);
            if (!p.send(r)) return;
            if (verb == "DATA" && r.rfind("354", 0) == 0) {
                std::string body;
                if (!p.read_until("\r\n.\r\n", &body)) return;
                {
                    std::lock_guard lock(mu);
                    data = body;
                }
                if (!p.send(reply_for("."))) return;
            }
            if (verb == "QUIT") return;
        }
    }
};

// server - a ScriptServer playing d.
std::unique_ptr<ScriptServer> server(Dialog& d) {
    return std::make_unique<ScriptServer>([&d](Peer& p, int) { d.serve(p); });
}

// endpoint - 127.0.0.1 at port.
SmtpEndpoint endpoint(std::uint16_t port) { return SmtpEndpoint{"127.0.0.1", port}; }

// closed_port - a port nothing listens on (bound, then closed).
std::uint16_t closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

const SmtpEnvelope kEnvelope{"milter.example", "icap-milter@milter.example", {"admin@example.com", "ops@example.com"}};
const SmtpTimeouts kFast{1000ms, 1000ms};

// send - smtp_send with a 10 s overall limit.
SmtpResult send(const std::vector<SmtpEndpoint>& servers, std::string_view message,
                const SmtpEnvelope& env = kEnvelope, SmtpTimeouts t = kFast) {
    return smtp_send(servers, env, message, t, SteadyClock::now() + 10s);
}

} // namespace

TEST_CASE("smtp: a whole transaction, multiline EHLO, dot-stuffing and CRLF on the wire") {
    Dialog d;
    auto s = server(d);
    const std::string msg = "Subject: x\n\n.leading dot\nplain\r\n..two dots\n.\nlast line without end";
    SmtpResult r = send({endpoint(s->port())}, msg);
    REQUIRE(r.ok);
    CHECK(r.server == "127.0.0.1:" + std::to_string(s->port()));
    CHECK(r.errors.empty());
    s.reset(); // joins the server thread
    REQUIRE(d.commands.size() == 6);
    CHECK(d.commands[0] == "EHLO milter.example");
    CHECK(d.commands[1] == "MAIL FROM:<icap-milter@milter.example>");
    CHECK(d.commands[2] == "RCPT TO:<admin@example.com>");
    CHECK(d.commands[3] == "RCPT TO:<ops@example.com>");
    CHECK(d.commands[4] == "DATA");
    CHECK(d.commands[5] == "QUIT");
    CHECK(d.data == "Subject: x\r\n\r\n..leading dot\r\nplain\r\n...two dots\r\n..\r\nlast line without end\r\n.\r\n");
}

TEST_CASE("smtp: dot_stuff alone") {
    CHECK(dot_stuff("") == ".\r\n");
    CHECK(dot_stuff("a\n") == "a\r\n.\r\n");
    CHECK(dot_stuff(".\r\n.") == "..\r\n..\r\n.\r\n");
    CHECK(dot_stuff("a\rb") == "a\r\nb\r\n.\r\n"); // a bare CR is a line end too, never a lone byte
}

TEST_CASE("smtp: EHLO refused with 5xx falls back to HELO") {
    Dialog d;
    d.replies["EHLO"] = "502 5.5.2 what\r\n";
    auto s = server(d);
    REQUIRE(send({endpoint(s->port())}, "x\n").ok);
    s.reset();
    REQUIRE(d.commands.size() >= 2);
    CHECK(d.commands[0] == "EHLO milter.example");
    CHECK(d.commands[1] == "HELO milter.example");
}

TEST_CASE("smtp: a 4xx from the primary sends the mail to the backup") {
    Dialog primary, backup;
    primary.replies["MAIL"] = "451 4.3.0 try later\r\n";
    auto p = server(primary);
    auto b = server(backup);
    SmtpResult r = send({endpoint(p->port()), endpoint(b->port())}, "hello\n");
    REQUIRE(r.ok);
    CHECK(r.server == endpoint(b->port()).str());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("MAIL FROM: 451 4.3.0 try later") != std::string::npos);
    p.reset();
    b.reset();
    CHECK(primary.data.empty());
    CHECK(backup.data == "hello\r\n.\r\n");
    CHECK(primary.commands.back() == "QUIT"); // polite after the refusal
}

TEST_CASE("smtp: a closed primary port fails over to the backup") {
    Dialog backup;
    auto b = server(backup);
    SmtpResult r = send({endpoint(closed_port()), endpoint(b->port())}, "x\n");
    REQUIRE(r.ok);
    CHECK(r.server == endpoint(b->port()).str());
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].find("connect") != std::string::npos);
}

TEST_CASE("smtp: every recipient refused (5xx) fails; one refused of two still sends") {
    SUBCASE("all refused") {
        Dialog d;
        d.replies["RCPT"] = "550 5.1.1 no such user\r\n";
        auto s = server(d);
        SmtpResult r = send({endpoint(s->port())}, "x\n");
        CHECK_FALSE(r.ok);
        CHECK(r.error_text().find("550 5.1.1 no such user") != std::string::npos);
        s.reset();
        for (const auto& c : d.commands) CHECK(c != "DATA");
    }
    SUBCASE("one refused") {
        // A server refusing only the second address.
        Dialog d;
        auto s = std::make_unique<ScriptServer>([&d](Peer& p, int) {
            p.send("220 hi\r\n");
            std::string line;
            while (p.read_until("\r\n", &line)) {
                d.commands.push_back(line.substr(0, line.size() - 2));
                if (line.rfind("RCPT TO:<ops@", 0) == 0) p.send("550 5.1.1 no\r\n");
                else if (line.rfind("DATA", 0) == 0) {
                    p.send("354 go\r\n");
                    std::string body;
                    p.read_until("\r\n.\r\n", &body);
                    d.data = body;
                    p.send("250 queued\r\n");
                } else if (line.rfind("QUIT", 0) == 0) {
                    p.send("221 bye\r\n");
                    return;
                } else p.send("250 ok\r\n");
            }
        });
        SmtpResult r = send({endpoint(s->port())}, "x\n");
        REQUIRE(r.ok);
        REQUIRE(r.refused.size() == 1);
        CHECK(r.refused[0] == "ops@example.com");
        s.reset();
        CHECK(d.data == "x\r\n.\r\n");
    }
}

TEST_CASE("smtp: 5xx at end of DATA and 4xx greeting are failures naming the step") {
    SUBCASE("end of data") {
        Dialog d;
        d.replies["."] = "554 5.7.1 rejected\r\n";
        auto s = server(d);
        SmtpResult r = send({endpoint(s->port())}, "x\n");
        CHECK_FALSE(r.ok);
        CHECK(r.error_text().find("end of DATA: 554 5.7.1 rejected") != std::string::npos);
    }
    SUBCASE("greeting") {
        Dialog d;
        d.greeting = "421 4.3.2 busy\r\n";
        auto s = server(d);
        SmtpResult r = send({endpoint(s->port())}, "x\n");
        CHECK_FALSE(r.ok);
        CHECK(r.error_text().find("greeting: 421 4.3.2 busy") != std::string::npos);
    }
}

TEST_CASE("smtp: a silent server times out within the step limit") {
    Dialog d;
    d.silent = true;
    auto s = server(d);
    const auto t0 = SteadyClock::now();
    SmtpResult r = send({endpoint(s->port())}, "x\n", kEnvelope, SmtpTimeouts{1000ms, 300ms});
    const auto took = SteadyClock::now() - t0;
    CHECK_FALSE(r.ok);
    CHECK(r.error_text().find("timed out") != std::string::npos);
    CHECK(took >= 290ms);
    CHECK(took < 2s);
}

TEST_CASE("smtp: the overall deadline bounds the whole attempt") {
    Dialog a, b;
    a.silent = b.silent = true;
    auto sa = server(a);
    auto sb = server(b);
    const auto t0 = SteadyClock::now();
    SmtpResult r = smtp_send({endpoint(sa->port()), endpoint(sb->port())}, kEnvelope, "x\n", SmtpTimeouts{5s, 5s},
                             SteadyClock::now() + 400ms);
    CHECK_FALSE(r.ok);
    CHECK(SteadyClock::now() - t0 < 1500ms);
    CHECK(r.errors.size() == 2);
}

TEST_CASE("smtp: over-long and malformed replies are failures, not hangs") {
    SUBCASE("long line") {
        Dialog d;
        d.greeting = "220 " + std::string(5000, 'a') + "\r\n";
        auto s = server(d);
        SmtpResult r = send({endpoint(s->port())}, "x\n");
        CHECK_FALSE(r.ok);
        CHECK(r.error_text().find("longer than") != std::string::npos);
    }
    SUBCASE("codes differ inside a multiline reply") {
        Dialog d;
        d.replies["EHLO"] = "250-test\r\n550 nope\r\n";
        auto s = server(d);
        SmtpResult r = send({endpoint(s->port())}, "x\n");
        CHECK_FALSE(r.ok);
        CHECK(r.error_text().find("malformed reply") != std::string::npos);
    }
    SUBCASE("no code") {
        Dialog d;
        d.greeting = "hello there\r\n";
        auto s = server(d);
        CHECK_FALSE(send({endpoint(s->port())}, "x\n").ok);
    }
}

TEST_CASE("smtp: envelope values that would break the command line are refused before connecting") {
    SmtpEnvelope bad = kEnvelope;
    bad.recipients = {"a@b>\r\nRCPT TO:<evil@x"};
    SmtpResult r = send({endpoint(closed_port())}, "x\n", bad);
    CHECK_FALSE(r.ok);
    CHECK(r.error_text().find("bad envelope") != std::string::npos);
}

TEST_CASE("smtp: parse_smtp_endpoint") {
    std::string why;
    auto a = parse_smtp_endpoint("mail.example.com:2525", &why);
    REQUIRE(a);
    CHECK(a->host == "mail.example.com");
    CHECK(a->port == 2525);
    auto b = parse_smtp_endpoint("relay", &why);
    REQUIRE(b);
    CHECK(b->port == 25);
    auto c = parse_smtp_endpoint("[::1]:587", &why);
    REQUIRE(c);
    CHECK(c->host == "::1");
    CHECK(c->str() == "[::1]:587");
    CHECK_FALSE(parse_smtp_endpoint("host:0", &why));
    CHECK_FALSE(parse_smtp_endpoint("host:99999", &why));
    CHECK_FALSE(parse_smtp_endpoint("host:", &why));
    CHECK_FALSE(parse_smtp_endpoint("", &why));
    CHECK_FALSE(parse_smtp_endpoint("bad host:25", &why));
    CHECK_FALSE(parse_smtp_endpoint("[::1", &why));
}
