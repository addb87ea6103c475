// NAME
//   test_icap_verdict.cpp - vendor verdict rules over the golden replies
// SUMMARY
//   One table row per file in tests/data/icap: the verdict kind and the
//   threat names it must yield. Every golden RESPMOD reply must be in the
//   table, so a new file cannot go untested.
#include "icap-milter/icap/rules.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace icapm;

namespace {

std::filesystem::path golden_dir() { return std::filesystem::path(TEST_DATA_DIR) / "icap"; }

// slurp - a whole file, or "" when missing.
std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) return {};
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// parse_file - the final reply of a golden file.
IcapResponse parse_file(const std::string& name) {
    ResponseParser p;
    auto s = p.feed(slurp(golden_dir() / (name + ".icap")));
    while (s == ResponseParser::State::Continue) s = p.resume();
    REQUIRE(s == ResponseParser::State::Done);
    return p.response();
}

// sent_for - the SentBody of <name>.sent, or of some other bytes.
SentBody sent_for(const std::string& name) {
    std::string body = slurp(golden_dir() / (name + ".sent"));
    if (body.empty()) body = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
    Sha256 h;
    h.update(body);
    return SentBody{body.size(), h.finish(), true};
}

struct Row {
    const char* file;
    VerdictKind kind;
    std::vector<std::string> threats;
    const char* reason_has = ""; // substring expected in Verdict::reason
};

const std::vector<Row> kTable = {
    // c-icap + virus_scan + clamd, captured
    {"cicap_clean_204", VerdictKind::Clean, {}},
    {"cicap_eicar", VerdictKind::Infected, {"Eicar-Body-Test.UNOFFICIAL"}, "X-Infection-Found"},
    {"cicap_clean_echo", VerdictKind::Clean, {}},
    {"cicap_400", VerdictKind::Error, {}, "400"},
    {"cicap_404", VerdictKind::Error, {}, "404"},
    {"cicap_500_clamd_down", VerdictKind::Error, {}, "500"},
    {"cicap_preview_continue", VerdictKind::Clean, {}},
    // c-icap behaviours that must never pass as clean
    {"cicapx_echo_truncated", VerdictKind::Unscannable, {}, "modified"},
    {"cicapx_echo_modified", VerdictKind::Unscannable, {}, "differs"},
    {"cicapx_echo_multichunk", VerdictKind::Clean, {}},
    // squidclamav
    {"squidclamav_infected_403", VerdictKind::Infected, {"Win.Test.EICAR_HDB-1"}},
    {"squidclamav_redirect_307", VerdictKind::Infected, {"stream: Win.Test.EICAR_HDB-1 FOUND"}, "X-Virus-ID"},
    // Kaspersky
    {"kaspersky_infected", VerdictKind::Infected, {"EICAR-Test-File"}, "X-Response-Info"},
    {"kaspersky_kwts_no_threats_204", VerdictKind::Clean, {}},
    // ESET
    {"eset_infected", VerdictKind::Infected, {"Eicar test file"}},
    {"eset_405", VerdictKind::Error, {}, "405"},
    // Symantec
    {"symantec_infected", VerdictKind::Infected, {"EICAR Test String"}, "X-Violations-Found"},
    {"symantec_container_type2", VerdictKind::Unscannable, {}, "Container Depth Exceeded"},
    {"symantec_two_violations", VerdictKind::Infected, {"W32.Test.A", "W97M.Test.B"}},
    {"symantec_539_unlicensed", VerdictKind::Error, {}, "539"},
    {"symantec_500_error_code", VerdictKind::Error, {}, "X-Error-Code: 4 (resource exhausted)"},
    // McAfee / Skyhigh
    {"mcafee_403_virusfound", VerdictKind::Infected, {"blocked by scanner (HTTP 403 VirusFound)"}, "HTTP 403"},
    {"mcafee_custom_virus_id", VerdictKind::Infected, {"EICAR test file"}},
    {"mcafee_418", VerdictKind::Error, {}, "418"},
    // Trend Micro
    {"trend_infected", VerdictKind::Infected, {"Eicar_test_file"}},
    // Sophos
    {"sophos_infected", VerdictKind::Infected, {"EICAR-AV-Test"}, "X-Blocked"},
    {"sophos_blocked_only", VerdictKind::Infected, {"Virus found during virus scan"}, "X-Blocked"},
    // OPSWAT
    {"opswat_blocked", VerdictKind::Infected, {"Infected"}, "X-Response-Info"},
    {"opswat_blocked_named", VerdictKind::Infected, {"EICAR-Test-File"}},
    {"opswat_allowed_204", VerdictKind::Clean, {}},
    // F-Secure
    {"fsecure_infected", VerdictKind::Infected, {"EICAR_Test_File"}, "X-FSecure-Scan-Result"},
    {"fsecure_clean_204", VerdictKind::Clean, {}},
    // Bitdefender
    {"bitdefender_infected", VerdictKind::Infected, {"EICAR-Test-File (not a virus)"}},
    // generic status handling
    {"generic_408", VerdictKind::Error, {}, "408"},
    {"generic_501", VerdictKind::Error, {}, "501"},
    {"generic_502", VerdictKind::Error, {}, "502"},
    {"generic_503", VerdictKind::Error, {}, "503"},
    {"generic_505", VerdictKind::Error, {}, "505"},
    {"generic_403", VerdictKind::Error, {}, "403"},
    {"generic_206_unexpected", VerdictKind::Unscannable, {}, "206"},
    {"generic_infected_on_204", VerdictKind::Infected, {"Odd.Vendor"}},
    {"generic_folded_virus_id", VerdictKind::Infected, {"Long.Threat.Name .Continued"}},
    {"generic_200_no_encapsulated", VerdictKind::Unscannable, {}, "without an encapsulated"},
    {"generic_lf_only", VerdictKind::Clean, {}},
    {"generic_chunk_extensions", VerdictKind::Clean, {}},
};

// options_files - golden files that are OPTIONS replies, not RESPMOD.
const std::set<std::string> kOptionsFiles = {"cicap_options", "kaspersky_options", "fsecure_options"};

} // namespace

TEST_CASE("icap verdict: golden replies of every vendor") {
    for (const Row& row : kTable) {
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

TEST_CASE("icap verdict: every golden RESPMOD reply is in the table") {
    std::set<std::string> listed;
    for (const Row& row : kTable) listed.insert(row.file);
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
    CHECK(classify_respmod(r, partial).kind == VerdictKind::Unscannable);
    SentBody longer = s;
    longer.length += 1;
    CHECK(classify_respmod(r, longer).kind == VerdictKind::Unscannable);
    SentBody other = s;
    other.sha256[0] ^= 1;
    CHECK(classify_respmod(r, other).kind == VerdictKind::Unscannable);
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
    CHECK(classify_respmod(ok, SentBody{}).kind == VerdictKind::Unscannable);
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
    SUBCASE("Type=2 alone is unscannable, with a virus it is infected") {
        CHECK(with({{"X-Infection-Found", "Type=2; Resolution=2; Threat=Encrypted Container;"}}).kind ==
              VerdictKind::Unscannable);
        CHECK(with({{"X-Infection-Found", "Type=2; Resolution=2; Threat=Encrypted Container;"},
                    {"X-Response-Info", "Blocked"}})
                  .kind == VerdictKind::Unscannable);
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
