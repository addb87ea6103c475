// NAME
//   test_icap_verdict.cpp - vendor verdict rules over the golden replies
// SUMMARY
//   One table row per file in tests/data/icap: the verdict kind and the
//   threat names it must yield. Every golden RESPMOD reply must be in the
//   table (vendor_table.hpp, shared with the wire replay), so a new file
//   cannot go untested.
#include "icap-milter/icap/rules.hpp"
#include "vendor_table.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <string>
#include <vector>

using namespace icapm;

namespace {

using namespace icapm_test;

// parse_file - the final reply of a golden file.
IcapResponse parse_file(const std::string& name) {
    ResponseParser p;
    auto s = p.feed(slurp(golden_dir() / (name + ".icap")));
    while (s == ResponseParser::State::Continue) s = p.resume();
    REQUIRE(s == ResponseParser::State::Done);
    return p.response();
}

// sent_of - the SentBody of some bytes, as the session would record it.
SentBody sent_of(const std::string& body) {
    Sha256 h;
    h.update(body);
    const Digest d = h.finish();
    return SentBody{body.size(), [d] { return d; }, true};
}

// sent_for - the SentBody of what the client sends for this golden file.
SentBody sent_for(const std::string& name) { return sent_of(sent_body(name)); }

} // namespace

TEST_CASE("icap verdict: golden replies of every vendor") {
    for (const VendorRow& row : kVendorTable) {
        const std::string file = row.file;
        CAPTURE(file);
        IcapResponse r = parse_file(row.file);
        Verdict v = classify_respmod(r, sent_for(row.file));
        CHECK(std::string(to_string(v.kind)) == std::string(to_string(row.kind)));
        CHECK(v.threats == row.threats);
        CHECK(v.icap_status == r.status);
        CHECK(v.reason.find(row.reason_has) != std::string::npos);
        if (v.kind != VerdictKind::Clean) CHECK_FALSE(v.reason.empty());
    }
}

TEST_CASE("icap verdict: an echo row with other bytes than were sent is blocked (infected)") {
    int echoes = 0;
    for (const VendorRow& row : kVendorTable) {
        if (!row.echo) continue;
        ++echoes;
        const std::string file = row.file;
        CAPTURE(file);
        std::string other = sent_body(row.file);
        other[other.size() / 2] ^= 0x01; // same length, different bytes
        CHECK(classify_respmod(parse_file(row.file), sent_of(other)).kind == VerdictKind::Infected);
    }
    CHECK(echoes >= 5);
}

TEST_CASE("icap verdict: every golden RESPMOD reply is in the table") {
    std::set<std::string> listed;
    for (const VendorRow& row : kVendorTable) listed.insert(row.file);
    for (const auto& e : std::filesystem::directory_iterator(golden_dir())) {
        if (e.path().extension() != ".icap") continue;
        std::string stem = e.path().stem().string();
        CAPTURE(stem);
        CHECK((listed.count(stem) == 1 || kOptionsFiles.count(stem) == 1));
    }
}

TEST_CASE("icap verdict: a 200 echo is clean only when complete and identical") {
    IcapResponse r = parse_file("cicap_clean_echo");
    SentBody s = sent_for("cicap_clean_echo");
    CHECK(classify_respmod(r, s).kind == VerdictKind::Clean);
    SentBody partial = s;
    partial.complete = false; // the server answered before the upload ended
    CHECK(classify_respmod(r, partial).kind == VerdictKind::Infected);
    SentBody longer = s;
    longer.length += 1;
    Verdict cut = classify_respmod(r, longer);
    CHECK(cut.kind == VerdictKind::Infected);
    CHECK(cut.threats == std::vector<std::string>{"blocked by scanner"});
    CHECK(cut.reason.find("returned") != std::string::npos);
    SentBody other = s;
    other.sha256 = [d = s.sha256()]() mutable {
        d[0] ^= 1;
        return d;
    };
    CHECK(classify_respmod(r, other).kind == VerdictKind::Infected);
    SentBody unknown = s;
    unknown.sha256 = nullptr; // no digest to compare: never taken for an echo
    CHECK(classify_respmod(r, unknown).kind == VerdictKind::Infected);
}

TEST_CASE("icap verdict: no status is clean by default") {
    for (int status : {100, 201, 202, 206, 299, 300, 302, 400, 403, 404, 405, 408, 418, 500, 501, 502, 503,
                       505, 539, 599}) {
        IcapResponse r;
        r.status = status;
        CAPTURE(status);
        CHECK(classify_respmod(r, SentBody{}).kind != VerdictKind::Clean);
    }
    IcapResponse ok;
    ok.status = 200; // no encapsulated response at all
    CHECK(classify_respmod(ok, SentBody{}).kind == VerdictKind::Infected);
}

TEST_CASE("icap verdict: marker details") {
    auto with = [](std::initializer_list<std::pair<const char*, const char*>> hs, int status = 204) {
        IcapResponse r;
        r.status = status;
        for (auto [n, v] : hs) {
            std::string err;
            REQUIRE(r.headers.add_line(std::string(n) + ": " + v, &err));
        }
        return classify_respmod(r, SentBody{});
    };
    SUBCASE("X-Virus-ID 'no threats' is KWTS's clean") {
        CHECK(with({{"X-Virus-ID", "No Threats"}}).kind == VerdictKind::Clean);
        CHECK(with({{"X-Virus-ID", "Threat.X"}}).kind == VerdictKind::Infected);
    }
    SUBCASE("X-Response-Info Allowed is not a block") {
        CHECK(with({{"X-Response-Info", "Allowed"}}).kind == VerdictKind::Clean);
        CHECK(with({{"X-Response-Info", "blocked"}}).kind == VerdictKind::Infected);
    }
    SUBCASE("X-Block-Reason and X-Blocked-Reason") {
        Verdict v = with({{"X-Block-Reason", "Malware.Gen"}});
        CHECK(v.kind == VerdictKind::Infected);
        CHECK(v.threats == std::vector<std::string>{"Malware.Gen"});
        CHECK(with({{"X-Blocked-Reason", "x"}}).kind == VerdictKind::Infected);
    }
    SUBCASE("several threats in one X-Infection-Found, quoted names") {
        Verdict v = with({{"X-Infection-Found", "Type=0; Resolution=2; Threat=\"A.B\"; Type=1; Resolution=0; Threat=C;"}});
        CHECK(v.kind == VerdictKind::Infected);
        CHECK(v.threats == std::vector<std::string>{"A.B", "C"});
    }
    SUBCASE("unknown Type counts as infected, no Threat still infected") {
        CHECK(with({{"X-Infection-Found", "Type=7; Resolution=2; Threat=Odd;"}}).kind == VerdictKind::Infected);
        Verdict v = with({{"X-Infection-Found", "Type=0; Resolution=2;"}});
        CHECK(v.kind == VerdictKind::Infected);
        CHECK(v.threats == std::vector<std::string>{"unknown threat"});
    }
    SUBCASE("Type=2 alone is a block named after the violation, with a virus it names the virus") {
        Verdict t2 = with({{"X-Infection-Found", "Type=2; Resolution=2; Threat=Encrypted Container;"}});
        CHECK(t2.kind == VerdictKind::Infected);
        CHECK(t2.threats == std::vector<std::string>{"Encrypted Container"});
        CHECK(with({{"X-Infection-Found", "Type=2; Resolution=2; Threat=Encrypted Container;"},
                    {"X-Response-Info", "Blocked"}})
                  .kind == VerdictKind::Infected);
        Verdict v = with({{"X-Infection-Found", "Type=2; Resolution=2; Threat=Too Deep;"},
                          {"X-Infection-Found", "Type=0; Resolution=2; Threat=Virus.A;"}});
        CHECK(v.kind == VerdictKind::Infected);
        CHECK(v.threats == std::vector<std::string>{"Virus.A"});
    }
    SUBCASE("X-Violations-Found with count 0 is no marker, unreadable is") {
        CHECK(with({{"X-Violations-Found", "0"}}).kind == VerdictKind::Clean);
        CHECK(with({{"X-Violations-Found", "garbage"}}).kind == VerdictKind::Infected);
        Verdict one_line = with({{"X-Violations-Found", "1 file.exe Trojan.X 100 0"}});
        CHECK(one_line.threats == std::vector<std::string>{"Trojan.X"});
    }
    SUBCASE("F-Secure result other than clean") {
        CHECK(with({{"X-FSecure-Scan-Result", "clean"}}).kind == VerdictKind::Clean);
        Verdict v = with({{"X-FSecure-Scan-Result", "suspected"}});
        CHECK(v.kind == VerdictKind::Infected);
        CHECK(v.threats == std::vector<std::string>{"suspected"});
    }
    SUBCASE("threat names are sanitised and bounded") {
        Verdict v = with({{"X-Virus-ID", "Evil\x01Name  with   spaces"}});
        CHECK(v.threats == std::vector<std::string>{"Evil?Name with spaces"});
        Verdict l = with({{"X-Virus-ID", std::string(500, 'n').c_str()}});
        REQUIRE(l.threats.size() == 1);
        CHECK(l.threats[0].size() == kMaxThreatName);
    }
    SUBCASE("threat count is bounded and deduplicated") {
        IcapResponse r;
        r.status = 200;
        std::string err;
        for (int i = 0; i < 50; ++i) REQUIRE(r.headers.add_line("X-Virus-ID: T" + std::to_string(i), &err));
        REQUIRE(r.headers.add_line("X-Infection-Found: Type=0; Resolution=2; Threat=T0;", &err));
        Verdict v = classify_respmod(r, SentBody{});
        CHECK(v.threats.size() == kMaxThreats);
        CHECK(v.threats[0] == "T0");
    }
}

TEST_CASE("icap verdict: to_string names") {
    CHECK(std::string(to_string(VerdictKind::Clean)) == "clean");
    CHECK(std::string(to_string(VerdictKind::Unscannable)) == "unscannable");
    CHECK(std::string(to_string(VerdictKind::Infected)) == "infected");
    CHECK(std::string(to_string(VerdictKind::Error)) == "error");
}
