// NAME
//   test_pool.cpp - ServerPool and Scanner: balancing, caps, failover,
//   circuit breaker, health and definition signatures
// SUMMARY
//   Selection is tested on the pool alone (acquire() does no I/O); the
//   breaker, probes and failover against scripted ICAP servers on
//   127.0.0.1, port 0. Each test fails if the behaviour were missing:
//   it counts what each server received, or times how fast OnFail came.
#include "icap-milter/scan/pool.hpp"

#include "icap-milter/config/config.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/scan/server_spec.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap_script.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

using namespace icapm;
using namespace icapm_test;
using namespace std::chrono_literals;

namespace {

// spec_of - a ServerSpec from config text.
ServerSpec spec_of(const std::string& text) {
    std::string error;
    auto s = parse_server_spec(text, &error);
    INFO(error);
    REQUIRE(s);
    return *s;
}

// closed_port - a loopback port with nothing listening.
std::uint16_t closed_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// url - the config URI of a scripted server.
std::string url(const ScriptServer& s) { return "icap://127.0.0.1:" + std::to_string(s.port()) + "/avscan"; }

// scanner_config - a Config for Scanner tests with short timeouts.
std::shared_ptr<const Config> scanner_config(std::vector<std::string> servers, unsigned threads = 2,
                                             unsigned breaker = 3) {
    auto c = std::make_shared<Config>();
    c->scanner_self_test = false; // scripted servers: no EICAR canaries
    c->icap_servers = std::move(servers);
    c->scan_threads = threads;
    c->connect_timeout = 1000ms;
    c->io_timeout = 2000ms;
    c->scan_timeout = 5000ms;
    c->circuit_breaker_failures = breaker;
    c->circuit_breaker_probe_interval = 1000ms;
    return c;
}

// task_of - one ScanTask over text.
ScanTask task_of(const std::string& text, const std::string& job = "Job-1.1") {
    auto spool = std::make_shared<Spool>("/tmp", 1 << 20);
    spool->append(text);
    return ScanTask{"file.bin", job, spool};
}

} // namespace

TEST_CASE("pool: server specs parse, print canonically and reject bad options") {
    ServerSpec plain = spec_of("icap://h/avscan");
    CHECK(plain.weight == 1);
    CHECK(plain.priority == 1);
    CHECK(plain.preview);
    CHECK(plain.str() == "icap://h:1344/avscan");
    ServerSpec full = spec_of("icaps://h/av  weight=5 priority=2 preview=off user-agent=X/1 max-connections=3");
    CHECK(full.str() == "icaps://h:11344/av weight=5 priority=2 preview=off user-agent=X/1 max-connections=3");
    CHECK(spec_of(full.str()) == full);
    std::string error;
    for (const char* bad : {"icap://h/a weight=0", "icap://h/a weight=101", "icap://h/a priority=x",
                            "icap://h/a preview=maybe", "icap://h/a colour=red", "icap://h/a weight",
                            "icap://h/a weight=1 weight=2", "http://h/a", "icap://h/a max-connections=0"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_server_spec(bad, &error));
        CHECK(!error.empty());
    }
}

TEST_CASE("pool: least outstanding per weight within the best priority group") {
    QuietLog quiet;
    std::vector<ServerPool::Lease> held;
    std::string why;
    std::vector<int> per(3, 0);
    PoolSettings big;
    ServerPool wide({spec_of("icap://a/s weight=1 max-connections=50"), spec_of("icap://b/s weight=3 max-connections=50"),
                     spec_of("icap://c/s priority=2 max-connections=50")},
                    nullptr, fast(), big);
    for (int i = 0; i < 8; ++i) {
        auto l = wide.acquire({}, SteadyClock::now() + 1s, &why);
        REQUIRE(l);
        ++per[l->server()];
        held.push_back(std::move(*l));
    }
    CHECK(per[0] == 2);
    CHECK(per[1] == 6);
    CHECK(per[2] == 0); // a lower group only serves when the best one has nobody up
    auto st = wide.status();
    CHECK(st[1].outstanding == 6);
    held.clear();
    CHECK(wide.status()[1].outstanding == 0);
    CHECK(wide.status()[1].open == 6); // sessions kept for reuse

    // Failover: with a and b tried, the next group is used.
    auto l = wide.acquire({true, true, false}, SteadyClock::now() + 1s, &why);
    REQUIRE(l);
    CHECK(l->server() == 2);
}

TEST_CASE("pool: the connection cap makes acquire wait, and a return frees a slot") {
    QuietLog quiet;
    ServerPool pool({spec_of("icap://a/s max-connections=2")}, nullptr, fast(), PoolSettings{});
    std::string why;
    auto a = pool.acquire({}, SteadyClock::now() + 1s, &why);
    auto b = pool.acquire({}, SteadyClock::now() + 1s, &why);
    REQUIRE(a);
    REQUIRE(b);
    auto start = SteadyClock::now();
    auto c = pool.acquire({}, SteadyClock::now() + 150ms, &why);
    CHECK_FALSE(c);
    CHECK(SteadyClock::now() - start >= 140ms);
    CHECK(why.find("cap") != std::string::npos);
    std::thread giver([&] {
        std::this_thread::sleep_for(50ms);
        a.reset();
    });
    auto d = pool.acquire({}, SteadyClock::now() + 2s, &why);
    giver.join();
    CHECK(d);
    CHECK(pool.status()[0].open == 2);
}

TEST_CASE("pool: the breaker opens after N failures; with nothing up acquire fails at once") {
    QuietLog quiet;
    PoolSettings ps;
    ps.failures_to_down = 2;
    ServerPool pool({spec_of("icap://a/s"), spec_of("icap://b/s")}, nullptr, fast(), ps);
    CHECK(pool.overall() == Health::Pending);
    pool.report_failure(0, "refused");
    CHECK_FALSE(pool.status()[0].down);
    pool.report_success(0, "T1"); // a success resets the count
    pool.report_failure(0, "refused");
    CHECK_FALSE(pool.status()[0].down);
    pool.report_failure(0, "refused");
    CHECK(pool.status()[0].down);
    CHECK(pool.status()[0].health == Health::Error);
    pool.report_success(1, "T1");
    CHECK(pool.overall() == Health::Warnings); // one down, one up
    std::string why;
    for (int i = 0; i < 5; ++i) {
        auto l = pool.acquire({}, SteadyClock::now() + 1s, &why);
        REQUIRE(l);
        CHECK(l->server() == 1);
    }
    pool.report_failure(1, "reset");
    pool.report_failure(1, "reset");
    CHECK_FALSE(pool.any_up());
    CHECK(pool.overall() == Health::Error);
    auto start = SteadyClock::now();
    CHECK_FALSE(pool.acquire({}, SteadyClock::now() + 10s, &why));
    CHECK(SteadyClock::now() - start < 50ms);
    CHECK(why == "no scanner is up");
    CHECK(counters().scanner_health().status == "Error");
}

TEST_CASE("pool: a down server is probed with OPTIONS and comes back; signatures are tracked") {
    QuietLog quiet;
    Recorder rec;
    std::atomic<int> tag{1};
    ScriptServer srv([&](Peer& p, int) {
        while (true) {
            Request r;
            if (!p.read_request(&r)) return;
            ++rec.options;
            std::string o = "ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nISTag: \"DEFS-" + std::to_string(tag.load()) +
                            "\"\r\nMax-Connections: 1\r\nOptions-TTL: 3600\r\nEncapsulated: null-body=0\r\n\r\n";
            if (!p.send(o)) return;
        }
    });
    PoolSettings ps;
    ps.failures_to_down = 1;
    ps.probe_interval = 1000ms;
    ps.health_interval = 60000ms;
    ServerPool pool({spec_of(url(srv))}, nullptr, fast(), ps);
    // The first health round validates the server and learns its signature and cap.
    CHECK(pool.maintain(SteadyClock::now()));
    CHECK(pool.status()[0].health == Health::Validated);
    CHECK(pool.status()[0].istag == "DEFS-1");
    CHECK(pool.status()[0].cap == 1); // Max-Connections lowers ScanThreads' default of 4
    CHECK(pool.signatures() == std::vector<std::string>{"DEFS-1"});
    CHECK(counters().scanner_health().last_signature == "DEFS-1");
    CHECK(counters().scanner_health().last_health_check != 0);
    CHECK(counters().scanner_health().status == "Service validated");
    const int asked = rec.options;

    pool.report_failure(0, "reset");
    CHECK(pool.status()[0].down);
    CHECK(pool.signatures().empty()); // a down server's signature does not count
    CHECK_FALSE(pool.maintain(SteadyClock::now()));   // not due yet
    CHECK(rec.options == asked);
    tag = 2;
    pool.maintain(SteadyClock::now() + 1100ms);       // probe due: OPTIONS, back up
    CHECK(rec.options == asked + 1);
    CHECK_FALSE(pool.status()[0].down);
    CHECK(pool.status()[0].istag == "DEFS-2");
    auto h = counters().scanner_health();
    CHECK(h.last_signature == "DEFS-2");
    CHECK(h.last_signature_update != 0);
    CHECK(pool.signatures() == std::vector<std::string>{"DEFS-2"});
}

TEST_CASE("pool: a down server that still refuses stays down") {
    QuietLog quiet;
    PoolSettings ps;
    ps.failures_to_down = 1;
    ps.probe_interval = 1000ms;
    ServerPool pool({spec_of("icap://127.0.0.1:" + std::to_string(closed_port()) + "/avscan")}, nullptr, fast(),
                    ps);
    pool.maintain(SteadyClock::now()); // health round: refused, breaker opens
    CHECK(pool.status()[0].down);
    CHECK(!pool.status()[0].last_error.empty());
    pool.maintain(SteadyClock::now() + 1100ms);
    CHECK(pool.status()[0].down);
    CHECK(pool.overall() == Health::Error);
}

TEST_CASE("scanner: a reset mid-body is retried once on another server") {
    QuietLog quiet;
    Recorder bad_rec, good_rec;
    ScriptServer bad([&](Peer& p, int) {
        while (true) {
            Request r;
            if (!p.read_head(&r)) return;
            if (r.method() == "OPTIONS") {
                ++bad_rec.options;
                if (!p.send(options_reply())) return;
                continue;
            }
            ++bad_rec.respmods;
            std::string some;
            p.read_exact(1000, &some);
            p.reset();
            return;
        }
    });
    ScriptServer good([&](Peer& p, int) { serve(p, good_rec, options_reply(), [](const Request&) { return kReply204; }); });
    // Both in one group; the first pick is either, so run enough items that
    // the resetting server is hit, and require every verdict to be clean.
    Scanner scanner(scanner_config({url(bad), url(good)}, 1, 100));
    const std::string data = random_bytes(300000);
    for (int i = 0; i < 4; ++i) {
        auto v = scanner.scan({task_of(data, "Job-" + std::to_string(i) + ".1")}, [] {});
        REQUIRE(v.size() == 1);
        CHECK(v[0].kind == VerdictKind::Clean);
        CHECK(v[0].server == good.uri().str());
    }
    CHECK(bad_rec.respmods >= 1);
    CHECK(good_rec.respmods == 4);
}

TEST_CASE("scanner: when every server resets the item fails after ScanRetries retries, spread over the servers") {
    QuietLog quiet;
    std::atomic<int> hits[3] = {0, 0, 0};
    auto resetting = [&](int which) {
        return [&, which](Peer& p, int) {
            while (true) {
                Request r;
                if (!p.read_head(&r)) return;
                if (r.method() == "OPTIONS") {
                    if (!p.send(options_reply())) return;
                    continue;
                }
                ++hits[which];
                p.reset();
                return;
            }
        };
    };
    ScriptServer a(resetting(0)), b(resetting(1)), c(resetting(2));
    auto config = std::make_shared<Config>(*scanner_config({url(a), url(b), url(c)}, 1, 100));
    config->scan_retries = 3;
    config->circuit_breaker_failures = 10; // keep every server eligible
    Scanner scanner(config);
    const auto retries_before = counters().scan_retries.load();
    auto v = scanner.scan({task_of(random_bytes(200000))}, [] {});
    REQUIRE(v.size() == 1);
    CHECK(v[0].kind == VerdictKind::Error);
    // 1 + ScanRetries attempts: every server once, then one again, then
    // OnFail. (On a server, a pooled connection closed before any reply
    // byte is retried once on a fresh one, so a server may see it twice.)
    int servers_hit = 0, total = 0;
    for (auto& h : hits) {
        servers_hit += h > 0;
        total += h;
    }
    CHECK(servers_hit == 3);
    CHECK(total >= 4);
    CHECK(total <= 8);
    CHECK(counters().scan_retries.load() - retries_before == 3);
}

TEST_CASE("scanner: with one server, a reset mid-body is retried once on a fresh connection") {
    QuietLog quiet;
    for (const bool always_reset : {false, true}) {
    CAPTURE(always_reset);
    std::atomic<int> respmods{0};
    ScriptServer srv([&](Peer& p, int) {
        while (true) {
            Request r;
            if (!p.read_head(&r)) return;
            if (r.method() == "OPTIONS") {
                if (!p.send(options_reply())) return;
                continue;
            }
            if (++respmods == 1 || always_reset) {
                // A reply cut off after its first bytes, as c-icap sometimes
                // does with a large TLS upload: not a stale-connection case.
                std::string some;
                p.read_exact(1000, &some);
                p.send("ICAP/1.0 200 OK\r\n");
                p.reset();
                return;
            }
            std::string body;
            bool ieof = false;
            if (!p.read_chunks(&body, &ieof)) return;
            if (!r.header("Preview").empty() && !ieof) {
                if (!p.send("ICAP/1.0 100 Continue\r\n\r\n") || !p.read_chunks(&body, &ieof)) return;
            }
            if (!p.send(kReply204)) return;
        }
    });
    Scanner scanner(scanner_config({url(srv)}, 1, 100));
    auto v = scanner.scan({task_of(random_bytes(300000))}, [] {});
    REQUIRE(v.size() == 1);
    if (always_reset) {
        CHECK(v[0].kind == VerdictKind::Error); // then OnFail: never clean
        CHECK(respmods <= 4);
    } else {
        CHECK(v[0].kind == VerdictKind::Clean);
        CHECK(respmods == 2);
    }
    }
}

TEST_CASE("scanner: a server that closes silently after every two requests costs nothing") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) {
        int served = 0;
        while (served < 2) {
            Request r;
            if (!p.read_request(&r)) return;
            if (r.method() == "OPTIONS") {
                if (!p.send(options_reply())) return;
                continue;
            }
            ++rec.respmods;
            if (!p.send(kReply204)) return;
            ++served;
        }
        p.close(); // no Connection: close, no warning
    });
    Scanner scanner(scanner_config({url(srv)}, 1, 1));
    for (int i = 0; i < 10; ++i) {
        auto v = scanner.scan({task_of("hello " + std::to_string(i))}, [] {});
        REQUIRE(v.size() == 1);
        CHECK(v[0].kind == VerdictKind::Clean);
    }
    CHECK(rec.respmods == 10);
    CHECK(scanner.health() != Health::Error);
}

TEST_CASE("scanner: with every server down, mail fails at once, not after a timeout") {
    QuietLog quiet;
    Scanner scanner(scanner_config({"icap://127.0.0.1:" + std::to_string(closed_port()) + "/avscan",
                                    "icap://127.0.0.1:" + std::to_string(closed_port()) + "/avscan"},
                                   2, 1));
    // The first message finds out (connection refused on both).
    auto v = scanner.scan({task_of("x")}, [] {});
    REQUIRE(v.size() == 1);
    CHECK(v[0].kind == VerdictKind::Error);
    for (int i = 0; i < 50 && scanner.health() != Health::Error; ++i) std::this_thread::sleep_for(20ms);
    CHECK(scanner.health() == Health::Error);
    auto start = SteadyClock::now();
    v = scanner.scan({task_of("y"), task_of("z")}, [] {});
    CHECK(SteadyClock::now() - start < 20ms);
    REQUIRE(v.size() == 2);
    CHECK(v[0].kind == VerdictKind::Error);
    CHECK(v[0].reason == "no scanner is up");
    CHECK(scanner.signatures().empty());
}

TEST_CASE("scanner: the server's Max-Connections caps concurrent requests") {
    QuietLog quiet;
    std::atomic<int> active{0}, peak{0}, total{0};
    const std::string opts = "ICAP/1.0 200 OK\r\nMethods: RESPMOD\r\nISTag: \"S\"\r\nMax-Connections: 2\r\n"
                             "Encapsulated: null-body=0\r\n\r\n";
    ScriptServer srv([&](Peer& p, int) {
        while (true) {
            Request r;
            if (!p.read_request(&r)) return;
            if (r.method() == "OPTIONS") {
                if (!p.send(opts)) return;
                continue;
            }
            int now = ++active;
            int old = peak.load();
            while (now > old && !peak.compare_exchange_weak(old, now)) {
            }
            std::this_thread::sleep_for(30ms);
            --active;
            ++total;
            if (!p.send(kReply204)) return;
        }
    });
    Scanner scanner(scanner_config({url(srv)}, 6, 3));
    // Let the health round learn Max-Connections first.
    for (int i = 0; i < 100 && scanner.health() == Health::Pending; ++i) std::this_thread::sleep_for(10ms);
    std::vector<ScanTask> tasks;
    for (int i = 0; i < 12; ++i) tasks.push_back(task_of("item " + std::to_string(i)));
    auto v = scanner.scan(std::move(tasks), [] {});
    REQUIRE(v.size() == 12);
    for (const auto& x : v) CHECK(x.kind == VerdictKind::Clean);
    CHECK(total == 12);
    CHECK(peak <= 2);
    CHECK(peak >= 1);
}
