// NAME
//   test_scanner.cpp - the Scanner's queue, message deadline and retries
// SUMMARY
//   Scripted ICAP servers on 127.0.0.1, port 0. Each case reproduces a
//   failure seen on a real set-up and fails without its fix: a scan queue
//   that stays full (the job pushed again after a timed-out push was a
//   moved-from one, and the worker crashed on it), a server that never
//   answers (a message must end at MessageScanTimeout, not after the sum
//   of every per-part timeout), and a server that closes in the middle
//   of its reply twice before answering (retries on new connections).
//   The scanner self-test is off here: these servers are scripted.
#include "icap-milter/config/config.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap_script.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace icapm;
using namespace icapm_test;
using namespace std::chrono_literals;

namespace {

// url_of - the icap:// URL of a scripted server.
std::string url_of(const ScriptServer& s) { return "icap://127.0.0.1:" + std::to_string(s.port()) + "/avscan"; }

// config_for - one scripted server, short timeouts, no self-test.
std::shared_ptr<Config> config_for(const ScriptServer& s) {
    auto c = std::make_shared<Config>();
    c->icap_servers = {url_of(s)};
    c->scan_threads = 1;
    c->connect_timeout = 1000ms;
    c->io_timeout = 3000ms;
    c->scan_timeout = 5000ms;
    c->circuit_breaker_failures = 100;
    c->scanner_self_test = false;
    return c;
}

// task - one ScanTask over text.
ScanTask task(const std::string& text, const std::string& job) {
    auto spool = std::make_shared<Spool>("/tmp", 1 << 20);
    spool->append(text);
    return ScanTask{"file.bin", job, spool};
}

// answer_204 - read the rest of a RESPMOD (with a 100 Continue after a
// preview) and answer 204; false when the client went away.
bool answer_204(Peer& p, const Request& r) {
    std::string body;
    bool ieof = false;
    if (!p.read_chunks(&body, &ieof)) return false;
    if (!r.header("Preview").empty() && !ieof) {
        if (!p.send("ICAP/1.0 100 Continue\r\n\r\n") || !p.read_chunks(&body, &ieof)) return false;
    }
    return p.send(kReply204);
}

// seconds_since - elapsed time, for bounds on how long a call took.
double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

TEST_CASE("scanner: a scan queue that stays full ends every message deliberately, and does not crash") {
    QuietLog quiet;
    // One worker, a queue of one, a server that takes 600 ms per part:
    // four messages at once keep the queue full, so pushes time out and are
    // tried again. Each message must end with a verdict (clean, or an error
    // at MessageScanTimeout), never with a worker crashing on a lost job.
    std::atomic<int> respmods{0};
    ScriptServer srv([&](Peer& p, int) {
        serve_heads(p, [&](Peer& peer, const Request& r) {
            ++respmods;
            std::this_thread::sleep_for(600ms);
            return answer_204(peer, r);
        });
    });
    auto config = config_for(srv);
    config->max_queue_length = 1;
    config->message_scan_timeout = 1500ms;
    Scanner scanner(config);
    const auto full_before = counters().queue_full.load();
    const auto deadline_before = counters().scan_deadline.load();

    constexpr int kMessages = 4;
    std::vector<std::vector<Verdict>> results(kMessages);
    std::vector<std::thread> senders;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < kMessages; ++i) {
        senders.emplace_back([&, i] {
            results[i] = scanner.scan({task(random_bytes(2000, i + 1), "Job-" + std::to_string(i) + ".1")}, [] {},
                                      50ms);
        });
    }
    for (auto& t : senders) t.join();
    const double took = seconds_since(start);

    int clean = 0, timed_out = 0;
    for (const auto& r : results) {
        REQUIRE(r.size() == 1);
        CAPTURE(r[0].reason);
        CHECK((r[0].kind == VerdictKind::Clean || r[0].kind == VerdictKind::Error));
        if (r[0].kind == VerdictKind::Clean) ++clean;
        if (r[0].kind == VerdictKind::Error) {
            CHECK(r[0].reason.find("MessageScanTimeout") != std::string::npos);
            ++timed_out;
        }
    }
    CHECK(clean >= 1);
    CHECK(timed_out >= 1);
    CHECK(took < 4.0); // 1.5 s deadline; generous for loaded CI machines
    CHECK(counters().queue_full.load() > full_before);
    CHECK(counters().scan_deadline.load() > deadline_before);
}

TEST_CASE("scanner: MessageScanTimeout ends a message whose server never answers") {
    QuietLog quiet;
    std::atomic<bool> done{false};
    ScriptServer srv([&](Peer& p, int) {
        serve_heads(p, [&](Peer& peer, const Request&) {
            // Read the request and say nothing until the client gives up.
            for (int i = 0; i < 100 && !done; ++i)
                if (peer.wait_peer_close(50ms)) break;
            return false;
        });
    });
    auto config = config_for(srv);
    config->io_timeout = 10000ms;
    config->scan_timeout = 10000ms;
    config->message_scan_timeout = 800ms;
    Scanner scanner(config);
    const auto start = std::chrono::steady_clock::now();
    auto v = scanner.scan({task(random_bytes(5000), "Job-9.1")}, [] {}, 100ms);
    const double took = seconds_since(start);
    done = true;
    REQUIRE(v.size() == 1);
    CAPTURE(v[0].reason);
    CHECK(v[0].kind == VerdictKind::Error);
    CHECK(v[0].reason.find("MessageScanTimeout") != std::string::npos);
    CHECK(took >= 0.7);
    CHECK(took < 3.0); // not the 10 s of IcapTimeout / ScanTimeout
}

TEST_CASE("scanner: a reply cut off twice is retried on new connections, then clean; each retry counted") {
    QuietLog quiet;
    for (const unsigned retries : {3u, 1u}) {
        CAPTURE(retries);
        std::atomic<int> respmods{0};
        std::atomic<int> cut{0};
        ScriptServer srv([&](Peer& p, int) {
            serve_heads(p, [&](Peer& peer, const Request& r) {
                if (++respmods > 2) return answer_204(peer, r);
                // The start of a reply, then an orderly close: "connection
                // closed in the middle of the reply", as seen from c-icap.
                std::string some;
                peer.read_exact(1000, &some);
                peer.send("ICAP/1.0 200 OK\r\nISTag: \"SCRIPT-1\"\r\n");
                ++cut;
                peer.close();
                return false;
            });
        });
        auto config = config_for(srv);
        config->scan_retries = retries;
        Scanner scanner(config);
        const auto before = counters().scan_retries.load();
        auto v = scanner.scan({task(random_bytes(300000, 5), "Job-4.1")}, [] {});
        REQUIRE(v.size() == 1);
        CAPTURE(v[0].reason);
        if (retries == 3) {
            CHECK(v[0].kind == VerdictKind::Clean);
            CHECK(respmods == 3);
            CHECK(counters().scan_retries.load() - before == 2);
            CHECK(srv.connections() >= 3); // every retry on a connection of its own
        } else {
            CHECK(v[0].kind == VerdictKind::Error); // then OnFail: never clean
            CHECK(respmods == 2);
            CHECK(counters().scan_retries.load() - before == 1);
        }
        CHECK(cut == 2);
    }
}

TEST_CASE("scanner: ScanRetries 0 gives a failed part exactly one try") {
    QuietLog quiet;
    std::atomic<int> respmods{0};
    ScriptServer srv([&](Peer& p, int) {
        serve_heads(p, [&](Peer& peer, const Request&) {
            ++respmods;
            peer.send("ICAP/1.0 500 Server Error\r\nISTag: \"SCRIPT-1\"\r\nEncapsulated: null-body=0\r\n\r\n");
            peer.close();
            return false;
        });
    });
    auto config = config_for(srv);
    config->scan_retries = 0;
    Scanner scanner(config);
    auto v = scanner.scan({task(random_bytes(1000, 3), "Job-5.1")}, [] {});
    REQUIRE(v.size() == 1);
    CHECK(v[0].kind == VerdictKind::Error);
    CHECK(respmods == 1);
}

TEST_CASE("scanner: cached_signatures never waits for a server (the token check runs on connection threads)") {
    QuietLog quiet;
    std::atomic<int> options{0};
    ScriptServer srv([&](Peer& p, int) {
        Request r;
        while (p.read_head(&r)) {
            if (r.method() != "OPTIONS") return;
            ++options;
            std::this_thread::sleep_for(700ms); // a slow scanner
            if (!p.send(options_reply())) return;
        }
    });
    Scanner scanner(config_for(srv));
    const auto start = std::chrono::steady_clock::now();
    auto first = scanner.cached_signatures();
    CHECK(seconds_since(start) < 0.2); // signatures() would wait for the OPTIONS round trip
    CHECK(first.empty());               // nothing known yet: a token cannot verify, the message is scanned
    bool known = false;
    for (int i = 0; i < 50 && !known; ++i) {
        std::this_thread::sleep_for(100ms);
        known = !scanner.cached_signatures().empty();
    }
    CHECK(known); // the health thread learnt it
    CHECK(scanner.cached_signatures() == std::vector<std::string>{"SCRIPT-1"});
}

TEST_CASE("scanner: stopping does not wait for a scanner's reply to a self-test canary") {
    QuietLog quiet;
    std::atomic<int> canaries{0};
    std::atomic<bool> done{false};
    ScriptServer srv([&](Peer& p, int) {
        serve_heads(p, [&](Peer& peer, const Request&) {
            ++canaries; // read the canary's head, then say nothing until the client leaves
            for (int i = 0; i < 200 && !done; ++i)
                if (peer.wait_peer_close(50ms)) break;
            return false;
        });
    });
    auto config = config_for(srv);
    config->scanner_self_test = true;
    config->io_timeout = 10000ms;
    config->scan_timeout = 10000ms;
    double took = 0;
    {
        auto scanner = std::make_unique<Scanner>(config);
        for (int i = 0; i < 100 && canaries == 0; ++i) std::this_thread::sleep_for(20ms);
        REQUIRE(canaries >= 1);
        std::this_thread::sleep_for(200ms); // the tester now waits for the reply
        const auto start = std::chrono::steady_clock::now();
        scanner.reset();
        took = seconds_since(start);
    }
    done = true;
    CHECK(took < 2.0); // not the 10 s of IcapTimeout
}
