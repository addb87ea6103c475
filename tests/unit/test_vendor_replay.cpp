// NAME
//   test_vendor_replay.cpp - the golden vendor replies played on the wire
// SUMMARY
//   A scripted ICAP server answers a real IcapSession::scan() (and, for
//   a few files, a Scanner with its pool and workers) with the bytes of
//   each golden RESPMOD reply in tests/data/icap, and the verdict must be
//   what vendor_table.hpp expects of the parser: same kind, same threat
//   names. A reply that starts with "100 Continue" is played as the
//   answer to a real preview. Echo rows are played a second time with
//   other bytes sent, and must then come out Infected (blocked), never Clean.
#include "icap-milter/config/config.hpp"
#include "icap-milter/icap/rules.hpp"
#include "icap-milter/mime/spool.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/scan/session.hpp"
#include "icap_script.hpp"
#include "vendor_table.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace icapm;
using namespace icapm_test;
using namespace std::chrono_literals;

namespace {

// Replay - what one golden file looks like on the wire.
struct Replay {
    std::string interim; // "ICAP/1.0 100 Continue..." block, "" when none
    std::string final;   // the rest, sent after the whole body
};

// replay_of - split a golden file into its 100 Continue (if any) and final reply.
Replay replay_of(const std::string& file) {
    std::string bytes = slurp(golden_dir() / (file + ".icap"));
    REQUIRE_FALSE(bytes.empty());
    Replay r;
    if (bytes.rfind("ICAP/1.0 100 ", 0) == 0) {
        std::size_t end = bytes.find("\r\n\r\n");
        REQUIRE(end != std::string::npos);
        r.interim = bytes.substr(0, end + 4);
        r.final = bytes.substr(end + 4);
    } else {
        r.final = std::move(bytes);
    }
    return r;
}

// final_status - the status of the final reply, as the parser reads it.
int final_status(const Replay& r) {
    ResponseParser p;
    auto s = p.feed(r.final);
    while (s == ResponseParser::State::Continue) s = p.resume();
    REQUIRE(s == ResponseParser::State::Done);
    return p.response().status;
}

// ReplayLog - what the scripted server saw, for checks on the exchange.
struct ReplayLog {
    std::atomic<int> respmods{0};
    std::atomic<bool> previewed{false}; // a preview was sent and not ended with ieof
    std::atomic<bool> body_intact{true};
};

// replay_server - OPTIONS (with Preview when the file has a 100 Continue),
// then every RESPMOD answered with the golden bytes. Reads the whole
// request first, so the reply is the server's answer to a complete upload.
ScriptServer::Handler replay_server(const Replay& rp, const std::string& expect_body, ReplayLog& log) {
    return [&rp, expect_body, &log](Peer& peer, int) {
        const bool preview = !rp.interim.empty();
        while (true) {
            Request r;
            if (!peer.read_request(&r, false)) return;
            if (r.method() == "OPTIONS") {
                if (!peer.send(options_reply(preview ? std::optional<int>(4) : std::nullopt))) return;
                continue;
            }
            ++log.respmods;
            if (preview) {
                if (r.header("Preview").empty() || r.ieof) {
                    log.previewed = false;
                } else {
                    log.previewed = true;
                    if (!peer.send(rp.interim)) return;
                    bool ieof = false;
                    if (!peer.read_chunks(&r.body, &ieof)) return;
                }
            }
            if (r.body != expect_body) log.body_intact = false;
            if (!peer.send(rp.final)) return;
        }
    };
}

// session_verdict - one scan of body on a fresh session against the replay.
Verdict session_verdict(const Replay& rp, const std::string& body, ReplayLog& log) {
    ScriptServer srv(replay_server(rp, body, log));
    Verdict v;
    {
        IcapSession s(srv.uri(), nullptr, fast());
        MemSource src(body);
        v = s.scan(ScanRequest{"replay.bin", "Job-R.1"}, src);
    } // the session closes before the server joins its workers
    return v;
}

// names - the threat names as one line, for messages.
std::string names(const std::vector<std::string>& threats) {
    std::string out;
    for (const auto& t : threats) out += (out.empty() ? "" : " | ") + t;
    return out;
}

// scanner_config - one scripted server, short timeouts, no retry surprises.
std::shared_ptr<const Config> scanner_config(const ScriptServer& s) {
    auto c = std::make_shared<Config>();
    c->scanner_self_test = false; // scripted servers: no EICAR canaries
    c->icap_servers = {"icap://127.0.0.1:" + std::to_string(s.port()) + "/avscan"};
    c->scan_threads = 1;
    c->connect_timeout = 1000ms;
    c->io_timeout = 2000ms;
    c->scan_timeout = 5000ms;
    c->circuit_breaker_failures = 100;
    c->circuit_breaker_probe_interval = 1000ms;
    return c;
}

// row_of - the table row of a file.
const VendorRow& row_of(const std::string& file) {
    for (const VendorRow& r : kVendorTable)
        if (file == r.file) return r;
    FAIL("no table row for " << file);
    throw std::logic_error("unreachable");
}

} // namespace

TEST_CASE("vendor replay: every golden RESPMOD reply through IcapSession::scan") {
    QuietLog quiet;
    int previews = 0;
    for (const VendorRow& row : kVendorTable) {
        const std::string file = row.file;
        CAPTURE(file);
        const Replay rp = replay_of(file);
        const std::string body = sent_body(file);
        ReplayLog log;
        Verdict v = session_verdict(rp, body, log);
        CAPTURE(v.reason);
        CHECK(log.respmods >= 1);
        CHECK(log.body_intact);
        if (!rp.interim.empty()) {
            ++previews;
            CHECK(log.previewed); // the 100 Continue answered a real preview
        }
        CHECK(std::string(to_string(v.kind)) == std::string(to_string(row.kind)));
        CHECK(names(v.threats) == names(row.threats));
        CHECK(v.icap_status == final_status(rp));
        CHECK(v.reason.find(row.reason_has) != std::string::npos);
        if (v.kind != VerdictKind::Clean) CHECK_FALSE(v.reason.empty());
    }
    CHECK(previews >= 1);
}

TEST_CASE("vendor replay: an echo of bytes other than those sent is blocked (infected), never clean") {
    QuietLog quiet;
    int echoes = 0, clean_when_same = 0;
    for (const VendorRow& row : kVendorTable) {
        if (!row.echo) continue;
        ++echoes;
        if (row.kind == VerdictKind::Clean) ++clean_when_same;
        const std::string file = row.file;
        CAPTURE(file);
        std::string other = sent_body(file);
        other[other.size() / 2] ^= 0x01; // same length, one bit differs
        ReplayLog log;
        Verdict v = session_verdict(replay_of(file), other, log);
        CAPTURE(v.reason);
        CHECK(log.respmods >= 1);
        CHECK(std::string(to_string(v.kind)) == "infected");
        CHECK(v.threats == std::vector<std::string>{"blocked by scanner"});
    }
    CHECK(echoes >= 5);
    CHECK(clean_when_same >= 3); // so the previous check is not vacuous
}

TEST_CASE("vendor replay: the table covers every golden RESPMOD reply") {
    std::set<std::string> listed;
    for (const VendorRow& row : kVendorTable) CHECK(listed.insert(row.file).second);
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(golden_dir())) {
        if (e.path().extension() != ".icap") continue;
        const std::string stem = e.path().stem().string();
        CAPTURE(stem);
        if (kOptionsFiles.count(stem)) continue;
        ++files;
        CHECK(listed.count(stem) == 1);
    }
    CHECK(files == listed.size());
}

TEST_CASE("vendor replay: a few replies through the Scanner and its pool") {
    QuietLog quiet;
    for (const char* file : {"cicap_eicar", "symantec_two_violations", "cicap_clean_echo",
                             "kaspersky_kwts_no_threats_204", "symantec_container_type2",
                             "symantec_500_error_code", "cicap_preview_continue"}) {
        const VendorRow& row = row_of(file);
        CAPTURE(std::string(file));
        const Replay rp = replay_of(file);
        const std::string body = sent_body(file);
        ReplayLog log;
        ScriptServer srv(replay_server(rp, body, log));
        std::vector<Verdict> v;
        {
            Scanner scanner(scanner_config(srv));
            auto spool = std::make_shared<Spool>("/tmp", 1 << 20);
            spool->append(body);
            v = scanner.scan({ScanTask{"replay.bin", "Job-P.1", spool}}, [] {});
        } // workers joined and sessions closed before the server stops
        REQUIRE(v.size() == 1);
        CAPTURE(v[0].reason);
        CHECK(log.respmods >= 1);
        CHECK(log.body_intact);
        CHECK(std::string(to_string(v[0].kind)) == std::string(to_string(row.kind)));
        CHECK(names(v[0].threats) == names(row.threats));
        CHECK(v[0].reason.find(row.reason_has) != std::string::npos);
    }
}
