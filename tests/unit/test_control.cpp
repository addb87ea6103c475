// NAME
//   test_control.cpp - unit tests of the control socket
// SUMMARY
//   The request parser and the reply format; the stats/health/queue
//   renderers (text and JSON); the in-flight registry (RAII, counting
//   down, bounds, threads); the server on a real unix socket: a client
//   that sends nothing, one that sends 10 MB, one that never reads its
//   reply, a slow command, and more clients than allowed never hold up
//   another client; the stale-socket rules of open_control_socket; and
//   icap-milterctl's client with its exit statuses.
#include "icap-milter/stats/control.hpp"
#include "icap-milter/stats/control_commands.hpp"
#include "icap-milter/stats/inflight.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "../../src/tools/control_cmd.hpp"
#include "icap_script.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <ctime>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace icapm;
using namespace std::chrono_literals;

namespace {

// CtlDir - a fresh directory for sockets, removed at the end.
struct CtlDir {
    std::string path;
    CtlDir() {
        char tmpl[] = "/tmp/icapm-ctl-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~CtlDir() { std::system(("rm -rf '" + path + "'").c_str()); }
};

// parse - parse_control_request, asserting success.
ControlRequest parse(const std::string& line) {
    std::string why;
    auto r = parse_control_request(line, &why);
    REQUIRE_MESSAGE(r.has_value(), why);
    return *r;
}

// parse_error - the error for a line that must not parse.
std::string parse_error(const std::string& line) {
    std::string why;
    auto r = parse_control_request(line, &why);
    REQUIRE_FALSE(r.has_value());
    return why;
}

// connect_to - a blocking client socket connected to path.
UniqueFd connect_to(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

// read_all - everything until EOF (or timeout), from a blocking socket.
std::string read_all(int fd, std::chrono::milliseconds limit = 3000ms) {
    std::string out;
    const auto until = std::chrono::steady_clock::now() + limit;
    char buf[4096];
    while (std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

// Server - a ControlServer on a temp socket with a simple handler.
struct Server {
    CtlDir dir;
    std::string path = dir.path + "/control";
    std::atomic<int> calls{0};
    std::optional<ControlServer> server;
    explicit Server(ControlLimits limits = {}, std::string big_reply = {}) {
        server.emplace(open_control_socket(path, 0600, "", ""), path,
                       [this, big_reply](const ControlRequest& r) -> ControlReply {
                           ++calls;
                           if (r.verb == ControlRequest::Verb::Reload) {
                               std::this_thread::sleep_for(1500ms); // a slow command
                               return {true, "reloaded"};
                           }
                           if (r.verb == ControlRequest::Verb::Queue) return {true, big_reply};
                           if (r.verb == ControlRequest::Verb::LogLevel) return {false, "no such luck"};
                           return {true, std::string("answer ") + (r.json ? "json" : "text")};
                       },
                       limits);
    }
    // ask - one exchange through icap-milterctl's client; the time it took.
    std::string ask(const std::string& line, std::chrono::milliseconds* took = nullptr) {
        const auto t0 = std::chrono::steady_clock::now();
        std::string why;
        auto r = control_exchange(path, line, 5000ms, &why);
        if (took) *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
        return r ? *r : "FAILED " + why;
    }
};

} // namespace

TEST_CASE("control: parse requests") {
    CHECK(parse("stats").verb == ControlRequest::Verb::Stats);
    CHECK_FALSE(parse("stats").json);
    CHECK(parse("stats json").json);
    CHECK(parse("STATS --json\r").json);
    CHECK(parse("  health   json ").verb == ControlRequest::Verb::Health);
    CHECK(parse("queue").verb == ControlRequest::Verb::Queue);
    CHECK(parse("reload").verb == ControlRequest::Verb::Reload);
    auto l = parse("loglevel DEBUG");
    CHECK(l.verb == ControlRequest::Verb::LogLevel);
    CHECK(l.arg == "debug");
    for (const char* lv : {"info", "notice", "warning", "error"}) CHECK(parse(std::string("loglevel ") + lv).arg == lv);
    CHECK(parse_error("").find("empty") != std::string::npos);
    CHECK(parse_error("frobnicate").find("unknown command 'frobnicate'") != std::string::npos);
    CHECK(parse_error("stats xml").find("json") != std::string::npos);
    CHECK(!parse_error("reload now").empty());
    CHECK(!parse_error("loglevel").empty());
    CHECK(!parse_error("loglevel trace").empty());
    CHECK(!parse_error("loglevel debug extra").empty());
    CHECK(parse_error(std::string("stats\0x", 7)).find("bad characters") != std::string::npos);
    CHECK(parse_error("stats\x1b[2J") == "bad characters in request");
}

TEST_CASE("control: reply format is bounded and one status line") {
    CHECK(format_reply({true, "a: 1"}, 100) == "OK\na: 1\n");
    CHECK(format_reply({true, "a: 1\n"}, 100) == "OK\na: 1\n");
    CHECK(format_reply({false, "bad\nthing"}, 100) == "ERROR bad thing\n");
    CHECK(format_reply({false, ""}, 100) == "ERROR failed\n");
    const std::string big(5000, 'x');
    const std::string cut = format_reply({true, big}, 1000);
    CHECK(cut.size() <= 1000);
    CHECK(cut.starts_with("OK\n"));
    CHECK(cut.find("reply cut at 1000 bytes") != std::string::npos);
    CHECK(format_reply({false, std::string(5000, 'e')}, 1u << 20).size() < 1100);
}

TEST_CASE("control: stats text and JSON carry every counter and the live queue") {
    const std::string text = with_queue_length(counters().render(), 17);
    const auto sent = text.find("SentToScanner: ");
    const auto queue = text.find("InScannerQueue: 17\n");
    REQUIRE(sent != std::string::npos);
    REQUIRE(queue != std::string::npos);
    CHECK(queue > sent);
    CHECK(text.find('\n', sent) + 1 == queue); // right after SentToScanner
    CHECK(with_queue_length("X: 1", 3) == "X: 1\nInScannerQueue: 3\n");

    const auto j = stats_json(text);
    for (const char* k : {"Examined", "SentToScanner", "InScannerQueue", "Scanned", "Infected", "VirusFree", "Unscanned",
                          "Token.Self", "Token.TrustedServer", "Token.Rejected", "Action.accept", "Action.reject"})
        CHECK_MESSAGE(j.contains(k), k);
    CHECK(j["InScannerQueue"] == 17);
    CHECK(j["Examined"].is_number_unsigned());
    CHECK(j["Health"].is_string());
    const auto j2 = stats_json("Token.Rejected.expired: 3\nName: 12abc\nbroken line\n: x\nLastVirusSignatureUpdate: never");
    CHECK(j2["Token.Rejected.expired"] == 3);
    CHECK(j2["Name"] == "12abc");
    CHECK(j2["LastVirusSignatureUpdate"] == "never");
    CHECK(j2.size() == 3);
}

TEST_CASE("control: health and queue renderers") {
    HealthView h;
    h.overall = "Service validated";
    h.pool.last_health_check = 1795000000;
    h.pool.last_signature = "CI/1.0";
    h.in_queue = 2;
    h.in_flight = 1;
    ServerStatus s;
    s.name = "icaps://scan1:11344/avscan";
    s.health = Health::Validated;
    s.outstanding = 1;
    s.open = 3;
    s.cap = 8;
    s.istag = "\"CLAM-27\"";
    s.version_info = "ClamAV 1.0";
    s.self_test = "passed";
    s.last_check = 1795000000;
    s.last_latency_ms = 12;
    s.avg_latency_ms = 15.25;
    h.servers.push_back(s);
    s.name = "icap://scan2/avscan";
    s.down = true;
    s.health = Health::Error;
    s.last_latency_ms = -1;
    s.avg_latency_ms = -1;
    s.last_error = "connect: refused";
    s.misses = {"pdf (documents)"};
    s.fix = "ScanFileTypes += DOCUMENT";
    h.servers.push_back(s);
    const std::string t = render_health(h, false);
    CHECK(t.find("Health: Service validated\n") == 0);
    CHECK(t.find("LastHealthCheck: 2026-") != std::string::npos);
    CHECK(t.find("Scanners: 2\n") != std::string::npos);
    CHECK(t.find("Scanner: icaps://scan1:11344/avscan\n  State: up (Service validated)") != std::string::npos);
    CHECK(t.find("Connections: in_use=1 open=3 cap=8") != std::string::npos);
    CHECK(t.find("Latency: last=12ms avg=15.2ms") != std::string::npos);
    CHECK(t.find("State: down (Error)") != std::string::npos);
    CHECK(t.find("Latency: none yet") != std::string::npos);
    CHECK(t.find("LastError: connect: refused") != std::string::npos);
    CHECK(t.find("SelfTestMisses: pdf (documents)\n  SelfTestFix: ScanFileTypes += DOCUMENT") != std::string::npos);
    const auto j = nlohmann::json::parse(render_health(h, true));
    CHECK(j["Health"] == "Service validated");
    REQUIRE(j["Scanners"].size() == 2);
    CHECK(j["Scanners"][0]["ConnectionsInUse"] == 1);
    CHECK(j["Scanners"][0]["ISTag"] == "\"CLAM-27\"");
    CHECK(j["Scanners"][0]["LatencyLastMs"] == 12);
    CHECK(j["Scanners"][1]["State"] == "down");
    CHECK(j["Scanners"][1]["SelfTestMisses"][0] == "pdf (documents)");
    CHECK(j["Scanners"][0]["SelfTestMisses"].empty());
    CHECK(j["InScannerQueue"] == 2);

    std::vector<InFlightEntry> e{{"4ABC", "Job-7", 1234, 3, 1}, {"NOQUEUE", "Job-8", 5, 1, 1}};
    const std::string q = render_queue(e, 0, false);
    CHECK(q == "InFlight: 2\n4ABC Job-7 age_ms=1234 parts=3 pending=1\nNOQUEUE Job-8 age_ms=5 parts=1 pending=1\n");
    CHECK(render_queue(e, 42, false).ends_with("... 42 more\n"));
    CHECK(render_queue({}, 0, false) == "InFlight: 0\n");
    const auto qj = nlohmann::json::parse(render_queue(e, 42, true));
    CHECK(qj["InFlight"] == 44);
    CHECK(qj["More"] == 42);
    CHECK(qj["Messages"][0]["QueueId"] == "4ABC");
    CHECK(qj["Messages"][0]["AgeMs"] == 1234);
    CHECK(qj["Messages"][1]["Pending"] == 1);
}

TEST_CASE("control: in-flight registry") {
    InFlight reg;
    std::size_t more = 9;
    CHECK(reg.snapshot(10, &more).empty());
    CHECK(more == 0);
    {
        auto a = reg.enter("Q1", "Job-1", 3);
        std::this_thread::sleep_for(5ms);
        auto b = reg.enter("Q2", "Job-2", 1);
        CHECK(reg.size() == 2);
        --*a.pending();
        auto snap = reg.snapshot(10, &more);
        REQUIRE(snap.size() == 2);
        CHECK(snap[0].queue_id == "Q1"); // oldest first
        CHECK(snap[0].parts == 3);
        CHECK(snap[0].pending == 2);
        CHECK(snap[0].age_ms >= 5);
        CHECK(snap[1].job_id == "Job-2");
        auto one = reg.snapshot(1, &more);
        CHECK(one.size() == 1);
        CHECK(more == 1);
        auto moved = std::move(b); // a moved ticket leaves once
    }
    CHECK(reg.size() == 0);

    // The counter outlives the ticket (a worker may finish a part late).
    std::shared_ptr<std::atomic<std::size_t>> late;
    {
        auto t = reg.enter("Q3", "Job-3", 2);
        late = t.pending();
    }
    --*late;
    CHECK(late->load() == 1);
    CHECK(reg.size() == 0);

    // Many threads enter and leave while another lists.
    std::atomic<bool> stop{false};
    std::thread lister([&] {
        while (!stop) (void)reg.snapshot(kMaxQueueEntries, &more);
    });
    std::vector<std::thread> ts;
    for (int i = 0; i < 8; ++i)
        ts.emplace_back([&reg, i] {
            for (int k = 0; k < 2000; ++k) {
                auto t = reg.enter("Q" + std::to_string(i), "Job-" + std::to_string(k), 2);
                --*t.pending();
            }
        });
    for (auto& t : ts) t.join();
    stop = true;
    lister.join();
    CHECK(reg.size() == 0);
}

TEST_CASE("control: server answers, and errors are one line") {
    Server s;
    CHECK(s.ask("stats") == "OK\nanswer text\n");
    CHECK(s.ask("health json") == "OK\nanswer json\n");
    CHECK(s.ask("bogus").starts_with("ERROR unknown command 'bogus'"));
    CHECK(s.ask("loglevel debug") == "ERROR no such luck\n");
    // Without a line end, the end of the stream ends the request.
    auto fd = connect_to(s.path);
    REQUIRE(::send(fd.get(), "stats", 5, MSG_NOSIGNAL) == 5);
    ::shutdown(fd.get(), SHUT_WR);
    CHECK(read_all(fd.get()) == "OK\nanswer text\n");
    // Only the first line counts: one command per connection.
    auto fd2 = connect_to(s.path);
    const std::string two = "stats\nreload\n";
    REQUIRE(::send(fd2.get(), two.data(), two.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(two.size()));
    CHECK(read_all(fd2.get()) == "OK\nanswer text\n");
}

TEST_CASE("control: a silent client does not block another, and is dropped at its deadline") {
    ControlLimits limits;
    limits.io_timeout = 2500ms;
    Server s(limits);
    auto silent = connect_to(s.path);
    auto half = connect_to(s.path);
    REQUIRE(::send(half.get(), "sta", 3, MSG_NOSIGNAL) == 3); // a request that never ends
    std::chrono::milliseconds took{};
    CHECK(s.ask("stats", &took) == "OK\nanswer text\n");
    CHECK(took < 1000ms); // blocked, it would take io_timeout
    // Both are closed by the server after io_timeout, without any reply.
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(read_all(silent.get(), 6000ms).empty());
    CHECK(read_all(half.get(), 6000ms).empty());
    CHECK(std::chrono::steady_clock::now() - t0 < 5000ms);
    CHECK(s.calls == 1);
}

TEST_CASE("control: a client sending 10 MB is cut off and does not block another") {
    Server s;
    auto flood = connect_to(s.path);
    ::fcntl(flood.get(), F_SETFL, O_NONBLOCK);
    std::atomic<bool> stop{false};
    std::atomic<std::size_t> pushed{0};
    std::thread sender([&] {
        const std::string chunk(65536, 'A');
        while (!stop && pushed < (10u << 20)) {
            ssize_t n = ::send(flood.get(), chunk.data(), chunk.size(), MSG_NOSIGNAL);
            if (n > 0) {
                pushed += static_cast<std::size_t>(n);
            } else if (errno == EAGAIN) {
                pollfd p{flood.get(), POLLOUT, 0};
                ::poll(&p, 1, 50);
            } else {
                break; // the server closed it
            }
        }
    });
    std::chrono::milliseconds took{};
    CHECK(s.ask("stats", &took) == "OK\nanswer text\n");
    CHECK(took < 1000ms); // blocked, it would take io_timeout (5 s)
    stop = true;
    sender.join();
    CHECK(pushed < (10u << 20)); // never swallowed whole
    std::string got = read_all(flood.get(), 6000ms);
    CHECK(got.find("request too long") != std::string::npos);
    CHECK(s.calls == 1);
}

TEST_CASE("control: a client that never reads a big reply does not block another") {
    ControlLimits limits;
    limits.io_timeout = 2500ms;
    Server s(limits, std::string(900000, 'q'));
    auto lazy = connect_to(s.path);
    int small = 4096;
    ::setsockopt(lazy.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    REQUIRE(::send(lazy.get(), "queue\n", 6, MSG_NOSIGNAL) == 6);
    std::this_thread::sleep_for(100ms);
    std::chrono::milliseconds took{};
    CHECK(s.ask("stats", &took) == "OK\nanswer text\n");
    CHECK(took < 1000ms); // blocked, it would take io_timeout
    // A reader gets the whole reply.
    const std::string full = s.ask("queue");
    CHECK(full.size() == 3 + 900000 + 1);
}

TEST_CASE("control: a slow command does not block another client") {
    Server s;
    std::string slow;
    std::thread t([&] { slow = s.ask("reload"); });
    std::this_thread::sleep_for(200ms);
    std::chrono::milliseconds took{};
    CHECK(s.ask("stats", &took) == "OK\nanswer text\n");
    CHECK(took < 800ms); // blocked, it would wait for the 1.5 s command
    t.join();
    CHECK(slow == "OK\nreloaded\n");
}

TEST_CASE("control: a command past command_timeout loses its client, and the server does not spin") {
    ControlLimits limits;
    limits.command_timeout = 300ms;
    Server s(limits);
    auto fd = connect_to(s.path);
    REQUIRE(::send(fd.get(), "reload\n", 7, MSG_NOSIGNAL) == 7);
    CHECK(read_all(fd.get(), 3000ms).empty()); // closed after 300 ms, no reply
    // While the dropped command still runs, the server thread sleeps in poll().
    timespec t0{}, t1{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    std::this_thread::sleep_for(500ms);
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    const double cpu = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(cpu < 0.1);
    CHECK(s.ask("stats") == "OK\nanswer text\n");
}

TEST_CASE("control: more clients than allowed are closed, more commands than allowed told busy") {
    ControlLimits limits;
    limits.max_clients = 2;
    limits.max_commands = 1;
    limits.io_timeout = 1500ms;
    Server s(limits);
    {
        auto a = connect_to(s.path);
        auto b = connect_to(s.path);
        std::this_thread::sleep_for(100ms);
        std::chrono::milliseconds took{};
        const std::string r = s.ask("stats", &took);
        // Closed at once (end of file or reset), not left waiting for an answer.
        CHECK((r.empty() || (r.starts_with("FAILED") && r.find("timed out") == std::string::npos)));
        CHECK(took < 1000ms);
        std::this_thread::sleep_for(1800ms); // a and b time out
        CHECK(s.ask("stats") == "OK\nanswer text\n");
    }
    std::string slow;
    std::thread t([&] { slow = s.ask("reload"); });
    std::this_thread::sleep_for(200ms);
    CHECK(s.ask("stats") == "ERROR busy, try again\n");
    t.join();
    CHECK(slow == "OK\nreloaded\n");
    CHECK(s.ask("stats") == "OK\nanswer text\n");
}

TEST_CASE("control: open_control_socket replaces a stale socket, never a live one or a file") {
    CtlDir dir;
    const std::string path = dir.path + "/control";
    {
        auto fd = open_control_socket(path, 0640, "", "");
        struct stat st{};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0640);
        CHECK(S_ISSOCK(st.st_mode));
        // Live: refused.
        CHECK_THROWS_WITH_AS(open_control_socket(path, 0600, "", ""), doctest::Contains("in use"), std::runtime_error);
    }
    // The listener closed, the file stays: stale, replaced.
    REQUIRE(::access(path.c_str(), F_OK) == 0);
    auto again = open_control_socket(path, 0600, "", "");
    CHECK(again);
    const std::string file = dir.path + "/plain";
    std::ofstream(file) << "x";
    CHECK_THROWS_WITH_AS(open_control_socket(file, 0600, "", ""), doctest::Contains("not a socket"), std::runtime_error);
    CHECK_THROWS_AS(open_control_socket(dir.path + "/" + std::string(200, 'x'), 0600, "", ""), std::runtime_error);
    CHECK_THROWS_WITH_AS(open_control_socket(dir.path + "/g", 0600, "", "no-such-group-xyz"),
                         doctest::Contains("ControlSocketGroup"), std::runtime_error);
}

TEST_CASE("control: the server removes its socket file when it stops") {
    CtlDir dir;
    const std::string path = dir.path + "/control";
    {
        ControlServer srv(open_control_socket(path, 0600, "", ""), path,
                          [](const ControlRequest&) { return ControlReply{true, "x"}; });
        CHECK(::access(path.c_str(), F_OK) == 0);
    }
    CHECK(::access(path.c_str(), F_OK) != 0);
}

TEST_CASE("control: icap-milterctl client usage and exit statuses") {
    CHECK(control_request_line({"stats"}) == "stats");
    CHECK(control_request_line({"stats", "--json"}) == "stats json");
    CHECK(control_request_line({"health", "--json"}) == "health json");
    CHECK(control_request_line({"queue"}) == "queue");
    CHECK(control_request_line({"reload"}) == "reload");
    CHECK(control_request_line({"loglevel", "notice"}) == "loglevel notice");
    CHECK_FALSE(control_request_line({"loglevel"}));
    CHECK_FALSE(control_request_line({"loglevel", "loud"}));
    CHECK_FALSE(control_request_line({"stats", "--xml"}));
    CHECK_FALSE(control_request_line({"reload", "x"}));
    CHECK_FALSE(control_request_line({"keygen"}));

    Server s;
    std::ostringstream out, err;
    CHECK(control_command({"stats", "--json"}, s.path, out, err) == 0);
    CHECK(out.str() == "answer json\n");
    out.str("");
    CHECK(control_command({"loglevel", "debug"}, s.path, out, err) == 1);
    CHECK(err.str().find("daemon: no such luck") != std::string::npos);
    CHECK(out.str().empty());
    CHECK(control_command({"stats", "--xml"}, s.path, out, err) == 2);
    CHECK(control_command({"stats"}, s.path + ".missing", out, err) == 3);
    CHECK(err.str().find("cannot connect") != std::string::npos);
    // A daemon that never answers: a timeout, exit 3.
    CtlDir dir;
    const std::string mute = dir.path + "/mute";
    auto listener = open_control_socket(mute, 0600, "", "");
    std::ostringstream err2;
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(control_command({"stats"}, mute, out, err2, 300ms) == 3);
    CHECK(std::chrono::steady_clock::now() - t0 < 2000ms);
    CHECK(err2.str().find("timed out") != std::string::npos);
}

TEST_CASE("control: the scanner counts a message's parts down, and the pool measures latency") {
    icapm_test::QuietLog quiet;
    icapm_test::Recorder rec;
    icapm_test::ScriptServer srv([&](icapm_test::Peer& p, int) {
        icapm_test::serve(p, rec, icapm_test::options_reply(), [](const icapm_test::Request&) {
            std::this_thread::sleep_for(300ms); // a scanner that takes its time
            return icapm_test::kReply204;
        });
    });
    auto c = std::make_shared<Config>();
    c->scanner_self_test = false;
    c->icap_servers = {"icap://127.0.0.1:" + std::to_string(srv.port()) + "/avscan"};
    c->scan_threads = 1;
    Scanner scanner(c);
    InFlight reg;
    auto ticket = reg.enter("QID1", "Job-1", 2);
    std::vector<ScanTask> tasks;
    for (int i = 0; i < 2; ++i) {
        auto spool = std::make_shared<Spool>("/tmp", 1 << 20);
        spool->append("part " + std::to_string(i));
        ScanTask t{"f.bin", "Job-1." + std::to_string(i + 1), spool};
        t.pending = ticket.pending();
        tasks.push_back(std::move(t));
    }
    std::size_t seen_between = 99;
    std::thread watcher([&] {
        // One worker, 300 ms a part: after the first part, one is left.
        std::this_thread::sleep_for(450ms);
        std::size_t more = 0;
        auto snap = reg.snapshot(10, &more);
        if (!snap.empty()) seen_between = snap[0].pending;
    });
    auto v = scanner.scan(std::move(tasks), [] {});
    watcher.join();
    REQUIRE(v.size() == 2);
    CHECK(v[0].kind == VerdictKind::Clean);
    CHECK(ticket.pending()->load() == 0);
    CHECK(seen_between == 1);
    const auto st = scanner.servers();
    REQUIRE(st.size() == 1);
    CHECK(st[0].last_latency_ms >= 290);
    CHECK(st[0].last_latency_ms < 2000);
    CHECK(st[0].avg_latency_ms >= 290);
    CHECK(st[0].last_definition_update > 0); // the ISTag was first seen now
}
