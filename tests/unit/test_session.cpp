// NAME
//   test_session.cpp - IcapSession against a scripted ICAP server
// SUMMARY
//   A server thread on 127.0.0.1 (port 0) plays each scenario: clean,
//   infected, echo, preview with 100 Continue, early replies, stale pooled
//   connections, resets, trickling and silent servers, garbage. Each test
//   checks what the client did on the wire as well as the verdict, so it
//   fails if the behaviour under test were missing.
#include "icap-milter/scan/session.hpp"

#include "icap-milter/net/tls.hpp"
#include "icap_script.hpp"

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace icapm;
using namespace std::chrono_literals;

using namespace icapm_test;


TEST_CASE("session: 204 is clean and the request is well formed") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(), [](const Request&) { return kReply204; }); });
    IcapSession s(srv.uri(), nullptr, fast());
    const std::string data = random_bytes(200000);
    MemSource src(data);
    Verdict v = s.scan(ScanRequest{"my report.pdf", "Job-1.1"}, src);
    CHECK(v.kind == VerdictKind::Clean);
    CHECK(v.icap_status == 204);
    CHECK(v.istag == "SCRIPT-1");
    CHECK(v.server == srv.uri().str());
    Request r = rec.last();
    CHECK(r.method() == "RESPMOD");
    CHECK(r.header("Allow") == "204");
    CHECK(r.header("Preview").empty());
    CHECK(r.head.find("Transfer-Encoding") == std::string::npos);
    CHECK(r.header("Host") == "127.0.0.1:" + std::to_string(srv.port()));
    CHECK(r.encap.rfind("GET http://icap-milter/my%20report.pdf HTTP/1.1\r\n", 0) == 0);
    CHECK(r.encap.find("Content-Length: 200000\r\n") != std::string::npos);
    CHECK(r.body == data);
    CHECK_FALSE(r.ieof);

    MemSource again("second");
    CHECK(s.scan(ScanRequest{"b", "Job-1.2"}, again).kind == VerdictKind::Clean);
    CHECK(rec.options == 1);       // OPTIONS cached
    CHECK(srv.connections() == 1); // connection reused
}

TEST_CASE("session: infected 200") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) {
        serve(p, rec, options_reply(), [](const Request&) { return infected_reply("Eicar-Test-Signature"); });
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource src("X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR");
    Verdict v = s.scan(ScanRequest{"eicar.com", "Job-2"}, src);
    CHECK(v.kind == VerdictKind::Infected);
    CHECK(v.threats == std::vector<std::string>{"Eicar-Test-Signature"});
    CHECK(v.icap_status == 200);
    MemSource more("y");
    CHECK(s.scan(ScanRequest{"y", "Job-2b"}, more).kind == VerdictKind::Infected);
    CHECK(srv.connections() == 1); // the whole reply was read, so the connection was reusable
}

TEST_CASE("session: 200 echo of the same bytes is clean, a changed body is blocked (infected)") {
    QuietLog quiet;
    Recorder rec;
    std::atomic<bool> tamper{false};
    ScriptServer srv([&](Peer& p, int) {
        serve(p, rec, options_reply(), [&](const Request& r) {
            std::string b = r.body;
            if (tamper && !b.empty()) b[b.size() / 2] ^= 0x20;
            return echo_reply(b);
        });
    });
    IcapSession s(srv.uri(), nullptr, fast());
    const std::string data = random_bytes(150000, 7);
    MemSource src(data);
    Verdict v = s.scan(ScanRequest{"a.bin", "Job-3"}, src);
    CHECK(v.kind == VerdictKind::Clean);
    CHECK(v.icap_status == 200);
    tamper = true;
    MemSource src2(data);
    Verdict w = s.scan(ScanRequest{"a.bin", "Job-3b"}, src2);
    CHECK(w.kind == VerdictKind::Infected);
    CHECK(w.reason.find("blocked by scanner") != std::string::npos);
}

TEST_CASE("session: preview, 100 Continue, then the rest") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(10), [](const Request&) { return kReply204; }); });
    IcapSession s(srv.uri(), nullptr, fast());
    SUBCASE("item larger than the preview") {
        const std::string data = random_bytes(100000, 3);
        MemSource src(data);
        CHECK(s.scan(ScanRequest{"p.bin", "Job-4"}, src).kind == VerdictKind::Clean);
        Request r = rec.last();
        CHECK(r.header("Preview") == "10");
        CHECK(r.preview_body == data.substr(0, 10));
        CHECK_FALSE(r.ieof);
        CHECK(r.body == data);
    }
    SUBCASE("item that fits in the preview ends with ieof") {
        MemSource src("tiny");
        CHECK(s.scan(ScanRequest{"t.txt", "Job-4b"}, src).kind == VerdictKind::Clean);
        Request r = rec.last();
        CHECK(r.header("Preview") == "4");
        CHECK(r.ieof);
        CHECK(r.body == "tiny");
    }
    SUBCASE("empty item") {
        MemSource src("");
        CHECK(s.scan(ScanRequest{"e", "Job-4c"}, src).kind == VerdictKind::Clean);
        Request r = rec.last();
        CHECK(r.header("Preview") == "0");
        CHECK(r.ieof);
    }
    SUBCASE("preview can be switched off per server") {
        s.set_preview(false);
        MemSource src(random_bytes(50));
        CHECK(s.scan(ScanRequest{"n", "Job-4d"}, src).kind == VerdictKind::Clean);
        CHECK(rec.last().header("Preview").empty());
    }
    CHECK(srv.connections() == 1);
}

TEST_CASE("session: a final reply to the preview ends the exchange; the connection stays usable") {
    QuietLog quiet;
    Recorder rec;
    std::atomic<int> continues{0};
    ScriptServer srv([&](Peer& p, int) {
        while (true) {
            Request r;
            if (!p.read_request(&r, /*send_continue=*/false)) return;
            rec.add(r);
            if (r.method() == "OPTIONS") {
                p.send(options_reply(16));
            } else if (r.body.find("EICAR") != std::string::npos) {
                p.send(infected_reply("Found.In.Preview")); // decided on the preview alone
            } else {
                ++continues;
                p.send("ICAP/1.0 100 Continue\r\n\r\n");
                bool ieof;
                if (!p.read_chunks(&r.body, &ieof)) return;
                p.send(kReply204);
            }
        }
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource bad("EICAR in the first bytes, followed by much more data that is never sent");
    Verdict v = s.scan(ScanRequest{"x", "Job-5"}, bad);
    CHECK(v.kind == VerdictKind::Infected);
    CHECK(v.threats == std::vector<std::string>{"Found.In.Preview"});
    CHECK(rec.last().body.size() == 16);
    MemSource good(random_bytes(5000));
    CHECK(s.scan(ScanRequest{"y", "Job-5b"}, good).kind == VerdictKind::Clean);
    CHECK(continues == 1);
    CHECK(srv.connections() == 1);
}

TEST_CASE("session: 100 Continue immediately followed by 204") {
    QuietLog quiet;
    std::atomic<int> respmods{0};
    ScriptServer srv([&](Peer& p, int) {
        while (true) {
            Request r;
            if (!p.read_request(&r, false)) return;
            if (r.method() == "OPTIONS") {
                p.send(options_reply(8));
                continue;
            }
            ++respmods;
            p.send("ICAP/1.0 100 Continue\r\n\r\n" + kReply204); // one packet, Symantec style
            p.drain();
            return;
        }
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource src(random_bytes(300000));
    auto t0 = std::chrono::steady_clock::now();
    Verdict v = s.scan(ScanRequest{"x", "Job-6"}, src);
    CHECK(v.kind == VerdictKind::Clean);
    CHECK(v.icap_status == 204);
    CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    MemSource src2("again");
    CHECK(s.scan(ScanRequest{"y", "Job-6b"}, src2).kind == VerdictKind::Clean);
    CHECK(srv.connections() == 2); // not reused after the odd exchange
    CHECK(respmods == 2);
}

TEST_CASE("session: an early final reply during a large upload stops the upload") {
    QuietLog quiet;
    std::atomic<bool> client_left{false};
    std::atomic<int> respmods{0};
    ScriptServer srv([&](Peer& p, int) {
        while (true) {
            Request r;
            if (!p.read_head(&r)) return;
            if (r.method() == "OPTIONS") {
                p.send(options_reply());
                continue;
            }
            ++respmods;
            if (respmods == 1) {
                // Answer at once and read nothing more: a client that only
                // writes would block until its io timeout.
                p.send(infected_reply("Early.Bird"));
                client_left = p.wait_peer_close(8000ms);
                return;
            }
            std::string body;
            bool ieof;
            if (!p.read_chunks(&body, &ieof)) return;
            p.send(kReply204);
        }
    });
    IcapSession s(srv.uri(), nullptr, fast(3000ms));
    MemSource big(random_bytes(32 << 20, 11));
    auto t0 = std::chrono::steady_clock::now();
    Verdict v = s.scan(ScanRequest{"big.iso", "Job-7"}, big);
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(v.kind == VerdictKind::Infected);
    CHECK(v.threats == std::vector<std::string>{"Early.Bird"});
    CHECK(took < 2500ms);
    MemSource small("next");
    CHECK(s.scan(ScanRequest{"n", "Job-7b"}, small).kind == VerdictKind::Clean);
    CHECK(srv.connections() == 2); // the connection of the early reply was dropped
    // The server thread notices the close on its own schedule: wait for it.
    for (int i = 0; i < 200 && !client_left; ++i) std::this_thread::sleep_for(10ms);
    CHECK(client_left);
}

TEST_CASE("session: silent close on a reused connection is retried once on a fresh one") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int index) {
        if (index == 0) {
            // OPTIONS and one scan, then read the next request and vanish.
            for (int i = 0; i < 2; ++i) {
                Request r;
                if (!p.read_request(&r)) return;
                rec.add(r);
                p.send(r.method() == "OPTIONS" ? options_reply() : kReply204);
            }
            Request r;
            p.read_head(&r);
            p.close();
            return;
        }
        serve(p, rec, options_reply(), [](const Request&) { return kReply204; });
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource a("first");
    CHECK(s.scan(ScanRequest{"a", "Job-8"}, a).kind == VerdictKind::Clean);
    const std::string data = random_bytes(70000, 5);
    MemSource b(data);
    Verdict v = s.scan(ScanRequest{"b", "Job-8b"}, b);
    CHECK(v.kind == VerdictKind::Clean);
    CHECK(srv.connections() == 2);
    CHECK(rec.last().body == data); // the retry sent the whole item again
    CHECK(b.rewinds >= 2);
}

TEST_CASE("session: a server closing an idle pooled connection costs nothing") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int index) {
        if (index == 0) {
            for (int i = 0; i < 2; ++i) {
                Request r;
                if (!p.read_request(&r)) return;
                p.send(r.method() == "OPTIONS" ? options_reply() : kReply204);
            }
            p.close(); // MaxKeepAliveRequests reached: close while idle
            return;
        }
        serve(p, rec, options_reply(), [](const Request&) { return kReply204; });
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource a("first");
    CHECK(s.scan(ScanRequest{"a", "Job-9"}, a).kind == VerdictKind::Clean);
    std::this_thread::sleep_for(100ms);
    MemSource b("second");
    CHECK(s.scan(ScanRequest{"b", "Job-9b"}, b).kind == VerdictKind::Clean);
    CHECK(srv.connections() == 2);
    CHECK(b.rewinds == 1); // found closed before use: no failed attempt, no retry
}

TEST_CASE("session: a fresh connection that closes without a reply is not retried") {
    QuietLog quiet;
    std::atomic<int> respmods{0};
    ScriptServer srv([&](Peer& p, int) {
        Request r;
        if (!p.read_request(&r)) return;
        if (r.method() == "OPTIONS") {
            p.send(options_reply() );
            if (!p.read_head(&r)) return;
        }
        ++respmods;
        p.close();
    });
    IcapSession s(srv.uri(), nullptr, fast());
    std::string err;
    REQUIRE(s.options(&err));
    s.close(); // the next scan starts on a fresh connection
    MemSource a("data");
    Verdict v = s.scan(ScanRequest{"a", "Job-10"}, a);
    CHECK(v.kind == VerdictKind::Error);
    CHECK(srv.connections() == 2);
    CHECK(respmods == 1);
}

TEST_CASE("session: reset in the middle of the reply is an error, not retried") {
    QuietLog quiet;
    ScriptServer srv([&](Peer& p, int) {
        Request r;
        while (p.read_request(&r)) {
            if (r.method() == "OPTIONS") {
                p.send(options_reply());
                r = Request{};
                continue;
            }
            const std::string full = echo_reply(r.body);
            p.send(full.substr(0, full.size() / 2));
            std::this_thread::sleep_for(50ms);
            p.reset();
            return;
        }
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource a(random_bytes(10000));
    Verdict v = s.scan(ScanRequest{"a", "Job-11"}, a);
    CHECK(v.kind == VerdictKind::Error);
    CHECK(srv.connections() == 1);
}

TEST_CASE("session: reset during the upload on a fresh connection is an error") {
    QuietLog quiet;
    ScriptServer srv([&](Peer& p, int index) {
        Request r;
        if (index == 0) {
            if (p.read_request(&r)) p.send(options_reply());
            return;
        }
        p.read_head(&r);
        p.reset();
    });
    IcapSession s(srv.uri(), nullptr, fast());
    std::string err;
    REQUIRE(s.options(&err));
    MemSource big(random_bytes(8 << 20));
    Verdict v = s.scan(ScanRequest{"big", "Job-12"}, big);
    CHECK(v.kind == VerdictKind::Error);
    CHECK(srv.connections() == 2);
}

TEST_CASE("session: a trickling server hits the deadline") {
    QuietLog quiet;
    std::atomic<bool> body_phase{false};
    ScriptServer srv([&](Peer& p, int) {
        Request r;
        while (p.read_request(&r)) {
            if (r.method() == "OPTIONS") {
                p.send(options_reply());
                r = Request{};
                continue;
            }
            std::string reply = body_phase ? echo_reply(r.body) : kReply204;
            std::size_t start = 0;
            if (body_phase) {
                start = reply.find("\r\n\r\nHTTP/1.1") + 4;
                start = reply.find("\r\n\r\n", start) + 4; // headers at once, body slowly
                p.send(reply.substr(0, start));
            } else {
                reply.insert(reply.find("\r\n\r\n"), "\r\nX-Pad: " + std::string(200, 'p'));
            }
            for (std::size_t i = start; i < reply.size(); ++i) {
                if (!p.send(reply.substr(i, 1))) return;
                std::this_thread::sleep_for(40ms);
            }
            return;
        }
    });
    SUBCASE("slow header part: bounded by the io timeout from its first byte") {
        IcapSession s(srv.uri(), nullptr, fast(400ms));
        MemSource a("x");
        auto t0 = std::chrono::steady_clock::now();
        Verdict v = s.scan(ScanRequest{"a", "Job-13"}, a);
        CHECK(v.kind == VerdictKind::Error);
        CHECK(v.reason.find("timed out") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);
    }
    SUBCASE("slow body: bounded by the total limit") {
        body_phase = true;
        Timeouts t = fast(400ms);
        t.total = 800ms;
        IcapSession s(srv.uri(), nullptr, t);
        MemSource a(std::string(300, 'b'));
        auto t0 = std::chrono::steady_clock::now();
        Verdict v = s.scan(ScanRequest{"a", "Job-13b"}, a);
        CHECK(v.kind == VerdictKind::Error);
        CHECK(v.reason.find("total") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - t0 < 2500ms);
    }
}

TEST_CASE("session: a silent server hits the io timeout") {
    QuietLog quiet;
    ScriptServer srv([&](Peer& p, int) {
        Request r;
        while (p.read_request(&r)) {
            if (r.method() == "OPTIONS") {
                p.send(options_reply());
                r = Request{};
                continue;
            }
            p.wait_activity(3000ms); // say nothing
            return;
        }
    });
    IcapSession s(srv.uri(), nullptr, fast(300ms));
    MemSource a("x");
    SUBCASE("without a cancel flag") {
        auto t0 = std::chrono::steady_clock::now();
        Verdict v = s.scan(ScanRequest{"a", "Job-14"}, a);
        CHECK(v.kind == VerdictKind::Error);
        CHECK(v.reason.find("timed out") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    }
    SUBCASE("with a cancel flag, as the Scanner's workers scan") {
        // The wait is cut in slices to look at the flag; each slice once
        // re-based the io timeout, so a silent server held a worker until
        // the message deadline (seen in CI: a part stalled 65 s).
        std::atomic<bool> cancel{false};
        auto t0 = std::chrono::steady_clock::now();
        Verdict v = s.scan(ScanRequest{"a", "Job-14c", Deadline::max(), &cancel}, a);
        CHECK(v.kind == VerdictKind::Error);
        CHECK(v.reason.find("timed out") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - t0 < 1500ms);
    }
}

TEST_CASE("session: a garbage status line is an error and drops the connection") {
    QuietLog quiet;
    std::atomic<int> garbage{1};
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) {
        serve(p, rec, options_reply(), [&](const Request&) {
            return garbage-- > 0 ? std::string("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n") : kReply204;
        });
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource a("x");
    Verdict v = s.scan(ScanRequest{"a", "Job-15"}, a);
    CHECK(v.kind == VerdictKind::Error);
    CHECK(v.reason.find("protocol error") != std::string::npos);
    MemSource b("y");
    CHECK(s.scan(ScanRequest{"b", "Job-15b"}, b).kind == VerdictKind::Clean);
    CHECK(srv.connections() == 2);
}

TEST_CASE("session: ICAP Connection: close is honoured") {
    QuietLog quiet;
    std::atomic<bool> reused_after_close{false};
    Recorder rec;
    ScriptServer srv([&](Peer& p, int index) {
        if (index == 0) {
            Request r;
            if (!p.read_request(&r)) return;
            p.send(options_reply());
            Request q;
            if (!p.read_request(&q)) return;
            p.send("ICAP/1.0 204 No Content\r\nISTag: \"SCRIPT-1\"\r\nConnection: close\r\n\r\n");
            // Keep the socket open: a client ignoring the header would send here.
            std::string more;
            if (p.wait_activity(500ms) && p.fill()) reused_after_close = true;
            return;
        }
        serve(p, rec, options_reply(), [](const Request&) { return kReply204; });
    });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource a("x");
    CHECK(s.scan(ScanRequest{"a", "Job-16"}, a).kind == VerdictKind::Clean);
    MemSource b("y");
    CHECK(s.scan(ScanRequest{"b", "Job-16b"}, b).kind == VerdictKind::Clean);
    CHECK_FALSE(reused_after_close);
    CHECK(srv.connections() == 2);
}

TEST_CASE("session: OPTIONS is cached until shortly before its TTL") {
    QuietLog quiet;
    Recorder rec;
    SUBCASE("with Options-TTL") {
        ScriptServer srv(
            [&](Peer& p, int) { serve(p, rec, options_reply(std::nullopt, 1), [](const Request&) { return kReply204; }); });
        IcapSession s(srv.uri(), nullptr, fast());
        MemSource a("x");
        CHECK(s.scan(ScanRequest{"a", "J"}, a).kind == VerdictKind::Clean);
        CHECK(s.scan(ScanRequest{"a", "J"}, a).kind == VerdictKind::Clean);
        CHECK(rec.options == 1);
        std::this_thread::sleep_for(1100ms);
        CHECK(s.scan(ScanRequest{"a", "J"}, a).kind == VerdictKind::Clean);
        CHECK(rec.options == 2);
    }
    SUBCASE("without Options-TTL") {
        ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(), [](const Request&) { return kReply204; }); });
        IcapSession s(srv.uri(), nullptr, fast());
        MemSource a("x");
        for (int i = 0; i < 3; ++i) CHECK(s.scan(ScanRequest{"a", "J"}, a).kind == VerdictKind::Clean);
        CHECK(rec.options == 1);
        s.invalidate_options();
        CHECK(s.scan(ScanRequest{"a", "J"}, a).kind == VerdictKind::Clean);
        CHECK(rec.options == 2);
    }
}

TEST_CASE("session: RESPMOD must be offered") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv(
        [&](Peer& p, int) { serve(p, rec, options_reply(std::nullopt, std::nullopt, "REQMOD"), [](const Request&) { return kReply204; }); });
    IcapSession s(srv.uri(), nullptr, fast());
    MemSource a("x");
    Verdict v = s.scan(ScanRequest{"a", "J"}, a);
    CHECK(v.kind == VerdictKind::Error);
    CHECK(v.reason.find("RESPMOD") != std::string::npos);
    CHECK(rec.respmods == 0);
}

TEST_CASE("session: OPTIONS refused or server unreachable") {
    QuietLog quiet;
    SUBCASE("404") {
        ScriptServer srv([&](Peer& p, int) {
            Request r;
            if (p.read_request(&r)) p.send("ICAP/1.0 404 Service not found\r\nConnection: close\r\n\r\n");
        });
        IcapSession s(srv.uri(), nullptr, fast());
        std::string err;
        CHECK_FALSE(s.options(&err));
        CHECK(err.find("404") != std::string::npos);
        MemSource a("x");
        Verdict v = s.scan(ScanRequest{"a", "J"}, a);
        CHECK(v.kind == VerdictKind::Error);
        CHECK(v.reason.find("OPTIONS") != std::string::npos);
    }
    SUBCASE("nothing listening") {
        IcapUri u;
        {
            ScriptServer gone([](Peer&, int) {});
            u = gone.uri();
        }
        IcapSession s(u, nullptr, fast());
        MemSource a("x");
        Verdict v = s.scan(ScanRequest{"a", "J"}, a);
        CHECK(v.kind == VerdictKind::Error);
        CHECK(v.reason.find("refused") != std::string::npos);
        CHECK(v.server == u.str());
    }
    SUBCASE("icaps:// without a TLS context") {
        IcapUri u;
        u.host = "127.0.0.1";
        u.port = 9;
        u.tls = true;
        u.service = "x";
        IcapSession s(u, nullptr, fast());
        MemSource a("x");
        CHECK(s.scan(ScanRequest{"a", "J"}, a).kind == VerdictKind::Error);
    }
}

TEST_CASE("session: a failing or lying ByteSource is an error, never an exception") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(), [](const Request&) { return kReply204; }); });
    IcapSession s(srv.uri(), nullptr, fast());
    struct Failing : ByteSource {
        std::size_t calls = 0;
        std::size_t read(std::span<char> out) override {
            if (++calls > 2) throw std::system_error(EIO, std::generic_category(), "spool read");
            std::memset(out.data(), 'a', out.size());
            return out.size();
        }
        void rewind() override { calls = 0; }
        std::uint64_t size() const override { return 10 << 20; }
    } failing;
    Verdict v = s.scan(ScanRequest{"f", "J"}, failing);
    CHECK(v.kind == VerdictKind::Error);
    CHECK(v.reason.find("spool read") != std::string::npos);
    struct Short : MemSource {
        Short() : MemSource("only a few bytes") {}
        std::uint64_t size() const override { return 1000; }
    } shorty;
    Verdict w = s.scan(ScanRequest{"s", "J"}, shorty);
    CHECK(w.kind == VerdictKind::Error);
    MemSource ok("fine");
    CHECK(s.scan(ScanRequest{"o", "J"}, ok).kind == VerdictKind::Clean);
}
