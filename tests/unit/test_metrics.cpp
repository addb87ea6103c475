// NAME
//   test_metrics.cpp - MetricsListen, the collectable, the /metrics endpoint
// SUMMARY
//   The address syntax; the exposition text of StatsCollectable over a
//   local Counters (every family, the seed's counters, actions, token
//   reasons, scanner gauges); the endpoint over real HTTP with a real
//   Scanner on a scripted ICAP server, whose part and message times land
//   in the histograms; a port in use refused with the system's reason;
//   and no observer once the endpoint is gone.
#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/config/schema.hpp"
#include "icap-milter/net/listen_address.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/stats/collect.hpp"
#include "icap-milter/stats/metrics.hpp"
#include "icap-milter/stats/observer.hpp"

#include "icap_script.hpp"

#include <prometheus/text_serializer.h>

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

using namespace icapm;
using namespace icapm_test;
using namespace std::chrono_literals;

namespace {

// has - the text holds line (a whole exposition line).
bool has(const std::string& text, const std::string& line) { return ("\n" + text).find("\n" + line + "\n") != std::string::npos; }

// http_get - GET path from 127.0.0.1:port over a plain socket; the whole reply.
std::string http_get(std::uint16_t port, const std::string& path) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    timeval tv{5, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    REQUIRE(::send(fd.get(), req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<std::size_t>(n));
    return out;
}

// one_part - a spooled part holding text.
ScanTask one_part(const std::string& text, const std::string& job) {
    auto spool = std::make_shared<Spool>("/tmp", 1 << 20);
    spool->append(text);
    return ScanTask{"file.txt", job, spool};
}

} // namespace

TEST_CASE("metrics: MetricsListen accepts IPv4 and bracketed IPv6 literals with a port") {
    auto a = parse_listen_address("127.0.0.1:9375", nullptr);
    REQUIRE(a);
    CHECK(a->host == "127.0.0.1");
    CHECK(!a->ipv6);
    CHECK(a->port == 9375);
    CHECK(a->str() == "127.0.0.1:9375");
    auto b = parse_listen_address("[::1]:65535", nullptr);
    REQUIRE(b);
    CHECK(b->host == "::1");
    CHECK(b->ipv6);
    CHECK(b->port == 65535);
    CHECK(b->str() == "[::1]:65535");
    CHECK(parse_listen_address("0.0.0.0:1", nullptr));
}

TEST_CASE("metrics: MetricsListen refuses names, bare ports and malformed text with a reason") {
    const char* bad[] = {"9375",          ":9375",           "localhost:9375", "127.0.0.1",      "127.0.0.1:",
                         "127.0.0.1:0",   "127.0.0.1:65536", "127.0.0.1:+80",  "127.0.0.1:80 ", " 127.0.0.1:80",
                         "::1:9375",      "[::1]9375",       "[::1:9375",      "[127.0.0.1]:80", "[]:80",
                         "1.2.3.4.5:80",  "127.0.0.1:9x"};
    for (const char* t : bad) {
        std::string why;
        CHECK_MESSAGE(!parse_listen_address(t, &why), t);
        CHECK_MESSAGE(why.find("is not ADDRESS:PORT") != std::string::npos, why);
    }
    CHECK(!parse_listen_address(std::string(100, '1') + ":80", nullptr));
    // The schema's setter uses the same check; empty means off.
    const OptionSpec* spec = find_option("MetricsListen");
    REQUIRE(spec);
    Config c;
    CHECK(c.metrics_listen.empty());
    CHECK(spec->set(c, "localhost:9375").find("names are not accepted") != std::string::npos);
    CHECK(spec->set(c, "[::1]:9375").empty());
    CHECK(c.metrics_listen == "[::1]:9375");
    CHECK(spec->set(c, "").empty());
    CHECK(c.metrics_listen.empty());
}

TEST_CASE("metrics: the collectable exports every counter, the actions and the token reasons") {
    Counters k;
    k.examined = 5;
    k.sent_to_scanner = 7;
    k.scanned = 6;
    k.infected = 2;
    k.virus_free = 3;
    k.quarantine_bytes = 1234;
    k.count_action(Action::Reject);
    k.count_action(Action::Reject);
    k.count_action(Action::Accept);
    k.token_rejected_because("expired");
    k.token_rejected_because("expired");
    k.token_rejected_because("bad-signature");
    ScannerHealth h;
    h.last_signature_update = 1700000000;
    k.set_scanner_health(h);
    StatsSources src;
    src.counters = &k;
    src.messages_in_scan = [] { return std::int64_t{4}; };
    src.milter_sessions = [] { return std::uint64_t{9}; };
    StatsCollectable c(src);
    const std::string text = prometheus::TextSerializer().Serialize(c.Collect());
    CHECK(has(text, "# TYPE icap_milter_examined_total counter"));
    CHECK(has(text, "icap_milter_examined_total 5"));
    CHECK(has(text, "icap_milter_sent_to_scanner_total 7"));
    CHECK(has(text, "icap_milter_scanned_total 6"));
    CHECK(has(text, "icap_milter_infected_total 2"));
    CHECK(has(text, "icap_milter_virus_free_total 3"));
    CHECK(has(text, "icap_milter_unscanned_total 0"));
    CHECK(has(text, "icap_milter_quarantine_stored_bytes_total 1234"));
    CHECK(has(text, "icap_milter_actions_total{action=\"reject\"} 2"));
    CHECK(has(text, "icap_milter_actions_total{action=\"accept\"} 1"));
    CHECK(has(text, "icap_milter_actions_total{action=\"clean\"} 0"));
    CHECK(has(text, "icap_milter_tokens_rejected_total{reason=\"expired\"} 2"));
    CHECK(has(text, "icap_milter_tokens_rejected_total{reason=\"bad-signature\"} 1"));
    CHECK(has(text, "# TYPE icap_milter_scan_queue_length gauge"));
    CHECK(has(text, "icap_milter_scan_queue_length 0")); // no scanner yet
    CHECK(has(text, "icap_milter_messages_in_scan 4"));
    CHECK(has(text, "icap_milter_milter_sessions 9"));
    CHECK(has(text, "icap_milter_definitions_updated_timestamp_seconds 1700000000"));
    std::size_t families = 0;
    for (std::size_t at = 0; (at = text.find("# TYPE ", at)) != std::string::npos; ++at) ++families;
    CHECK(families >= (counter_table().size() - 1) + 3 + 5); // the table but Token.Rejected, actions, rules, token reasons; gauges
    // Rejections beyond the reasons kept are "other", so the labels sum to Token.Rejected.
    Counters many;
    for (int i = 0; i < 70; ++i) many.token_rejected_because("r" + std::to_string(i));
    StatsSources src2;
    src2.counters = &many;
    const std::string text2 = prometheus::TextSerializer().Serialize(StatsCollectable(src2).Collect());
    CHECK(has(text2, "icap_milter_tokens_rejected_total{reason=\"other\"} 6"));
}

TEST_CASE("metrics: the scanner gauges show each server's state and connections") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(), [](const Request&) { return kReply204; }); });
    auto config = std::make_shared<Config>();
    config->icap_servers = {"icap://127.0.0.1:" + std::to_string(srv.port()) + "/avscan"};
    config->scan_threads = 1;
    config->scanner_self_test = false;
    auto scanner = std::make_shared<Scanner>(config);
    auto v = scanner->scan({one_part("hello", "T: Job-1.1")}, [] {});
    REQUIRE(v.size() == 1);
    CHECK(v[0].kind == VerdictKind::Clean);
    Counters k;
    StatsSources src;
    src.counters = &k;
    src.scanner = [&] { return scanner; };
    const std::string text = prometheus::TextSerializer().Serialize(StatsCollectable(src).Collect());
    const std::string who = "{server=\"" + config->icap_servers[0] + "\"}";
    CHECK(has(text, "icap_milter_scanner_up" + who + " 1"));
    CHECK(has(text, "icap_milter_scanner_connections_in_use" + who + " 0"));
    CHECK(has(text, "icap_milter_scanner_connections_open" + who + " 1"));
    CHECK(has(text, "icap_milter_scanner_connections_max" + who + " 1"));
    CHECK(has(text, "icap_milter_scanner_requests_total" + who + " 1"));
    CHECK(has(text, "icap_milter_scanner_definitions_info{server=\"" + config->icap_servers[0] +
                        "\",istag=\"SCRIPT-1\"} 1"));
    CHECK(has(text, "icap_milter_scanner_health{server=\"" + config->icap_servers[0] + "\",state=\"error\"} 0"));
    CHECK(text.find("icap_milter_scanner_self_test_passed{") == std::string::npos); // ScannerSelfTest off
    CHECK(has(text, "icap_milter_scan_queue_length 0"));
    CHECK(text.find("# TYPE icap_milter_health gauge") != std::string::npos);

    // icap-milter(8) METRICS names every family.
    std::ifstream in(std::string(TOP_SRCDIR) + "/man/icap-milter.8.in");
    const std::string man((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(man.find(".SH METRICS") != std::string::npos);
    src.messages_in_scan = [] { return std::int64_t{0}; };
    src.milter_sessions = [] { return std::uint64_t{0}; };
    std::vector<std::string> names{"icap_milter_part_scan_seconds", "icap_milter_message_scan_seconds",
                                   "icap_milter_scanner_self_test_passed"};
    for (const auto& f : StatsCollectable(src).Collect()) names.push_back(f.name);
    for (const auto& n : names) CHECK_MESSAGE(man.find(n) != std::string::npos, n);
}

TEST_CASE("metrics: the endpoint serves scan-time histograms over HTTP") {
    QuietLog quiet;
    CHECK(scan_observer() == nullptr);
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(), [](const Request&) { return kReply204; }); });
    auto config = std::make_shared<Config>();
    config->icap_servers = {"icap://127.0.0.1:" + std::to_string(srv.port()) + "/avscan"};
    config->scan_threads = 2;
    config->scanner_self_test = false;
    Scanner scanner(config);
    {
        MetricsServer metrics(ListenAddress{"127.0.0.1", false, 0});
        REQUIRE(metrics.port() != 0);
        CHECK(scan_observer() != nullptr);
        {
            const MessageTimer message; // as process_message does
            auto v = scanner.scan({one_part("a", "T: Job-1.1"), one_part("b", "T: Job-1.2"),
                                   one_part("c", "T: Job-1.3")},
                                  [] {});
            REQUIRE(v.size() == 3);
            CHECK(has(metrics.scrape(), "icap_milter_messages_in_scan 1"));
        }
        const std::string who = "server=\"" + config->icap_servers[0] + "\"";
        const std::string text = metrics.scrape();
        CHECK(has(text, "icap_milter_part_scan_seconds_count{" + who + "} 3"));
        CHECK(has(text, "icap_milter_part_scan_seconds_bucket{" + who + ",le=\"60\"} 3"));
        CHECK(has(text, "icap_milter_part_scan_seconds_bucket{" + who + ",le=\"+Inf\"} 3"));
        CHECK(has(text, "icap_milter_message_scan_seconds_count 1"));
        CHECK(has(text, "icap_milter_messages_in_scan 0"));
        CHECK(has(text, "# TYPE icap_milter_part_scan_seconds histogram"));

        const std::string reply = http_get(metrics.port(), "/metrics");
        CHECK(reply.rfind("HTTP/1.1 200", 0) == 0);
        CHECK(reply.find("\nicap_milter_part_scan_seconds_count{" + who + "} 3\n") != std::string::npos);
        CHECK(reply.find("\nicap_milter_examined_total ") != std::string::npos);
        CHECK(http_get(metrics.port(), "/other").find(" 404 ") != std::string::npos);
    }
    CHECK(scan_observer() == nullptr);
    // With no endpoint, the timers report nowhere (and read no clock).
    const MessageTimer quiet_message;
    PartTimer().done(Verdict{});
}

TEST_CASE("metrics: an IPv6 address listens, or fails saying civetweb lacks IPv6") {
    // Debian 12's civetweb is built without USE_IPV6: then the reason must say so.
    std::unique_ptr<MetricsServer> metrics;
    std::string what;
    try {
        metrics = std::make_unique<MetricsServer>(ListenAddress{"::1", true, 0});
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    if (!metrics) {
        CHECK(what.find("MetricsListen [::1]:0: cannot listen: prometheus-cpp's civetweb has no IPv6 support") == 0);
        CHECK(scan_observer() == nullptr);
        return;
    }
    UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(metrics->port());
    a.sin6_addr = in6addr_loopback;
    CHECK(::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
}

TEST_CASE("metrics: a port in use is refused with the system's reason") {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd.get(), 1) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) == 0);
    const ListenAddress where{"127.0.0.1", false, ntohs(a.sin_port)};
    std::string what;
    try {
        MetricsServer m(where);
    } catch (const std::runtime_error& e) {
        what = e.what();
    }
    CHECK(what == "MetricsListen " + where.str() + ": cannot listen: Address already in use");
    CHECK(scan_observer() == nullptr);
}
