// NAME
//   vendor_table.hpp - the expected verdict of every golden vendor reply
// SUMMARY
//   One row per RESPMOD reply in tests/data/icap: the verdict kind, the
//   threat names and a piece of the reason. Shared by the parser-level
//   test (test_icap_verdict.cpp) and the wire replay through a real
//   IcapSession and Scanner (test_vendor_replay.cpp), so both hold every
//   file to the same expectation. Rows marked echo are 200 replies that
//   carry the client's body back: they may be clean only when that body
//   is byte for byte what was sent (the <name>.sent file); for any other
//   bytes they must be Infected (blocked by scanner), never Clean.
#pragma once

#include "icap-milter/icap/verdict.hpp"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace icapm_test {

// golden_dir - where the golden replies live.
inline std::filesystem::path golden_dir() { return std::filesystem::path(TEST_DATA_DIR) / "icap"; }

// slurp - a whole file, or "" when missing.
inline std::string slurp(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) return {};
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// kEicar - the body sent for files without a <name>.sent.
inline const std::string kEicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

// sent_body - what the client sends when this reply is played: the
// <name>.sent file where there is one, else the EICAR string.
inline std::string sent_body(const std::string& name) {
    std::string body = slurp(golden_dir() / (name + ".sent"));
    return body.empty() ? kEicar : body;
}

struct VendorRow {
    const char* file;
    icapm::VerdictKind kind;            // when the client sent sent_body(file)
    std::vector<std::string> threats;
    const char* reason_has = "";        // substring expected in Verdict::reason
    bool echo = false;                  // a 200 body echo: other bytes => Infected (blocked)
};

inline const std::vector<VendorRow> kVendorTable = {
    // c-icap + virus_scan + clamd, captured
    {"cicap_clean_204", icapm::VerdictKind::Clean, {}, ""},
    {"cicap_eicar", icapm::VerdictKind::Infected, {"Eicar-Body-Test.UNOFFICIAL"}, "X-Infection-Found"},
    {"cicap_clean_echo", icapm::VerdictKind::Clean, {}, "", true},
    {"cicap_400", icapm::VerdictKind::Error, {}, "400"},
    {"cicap_404", icapm::VerdictKind::Error, {}, "404"},
    {"cicap_500_clamd_down", icapm::VerdictKind::Error, {}, "500"},
    {"cicap_preview_continue", icapm::VerdictKind::Clean, {}, ""},
    // c-icap behaviours that must never pass as clean
    {"cicapx_echo_truncated", icapm::VerdictKind::Infected, {"blocked by scanner"}, "returned", true},
    {"cicapx_echo_modified", icapm::VerdictKind::Infected, {"blocked by scanner"}, "differs", true},
    {"cicapx_echo_multichunk", icapm::VerdictKind::Clean, {}, "", true},
    // squidclamav
    {"squidclamav_infected_403", icapm::VerdictKind::Infected, {"Win.Test.EICAR_HDB-1"}, ""},
    {"squidclamav_redirect_307", icapm::VerdictKind::Infected, {"stream: Win.Test.EICAR_HDB-1 FOUND"}, "X-Virus-ID"},
    // Kaspersky
    {"kaspersky_infected", icapm::VerdictKind::Infected, {"EICAR-Test-File"}, "X-Response-Info"},
    {"kaspersky_kwts_no_threats_204", icapm::VerdictKind::Clean, {}, ""},
    // ESET
    {"eset_infected", icapm::VerdictKind::Infected, {"Eicar test file"}, ""},
    {"eset_405", icapm::VerdictKind::Error, {}, "405"},
    // Symantec
    {"symantec_infected", icapm::VerdictKind::Infected, {"EICAR Test String"}, "X-Violations-Found"},
    {"symantec_container_type2", icapm::VerdictKind::Infected, {"Container Depth Exceeded"}, "container/policy"},
    {"symantec_two_violations", icapm::VerdictKind::Infected, {"W32.Test.A", "W97M.Test.B"}, ""},
    {"symantec_539_unlicensed", icapm::VerdictKind::Error, {}, "539"},
    {"symantec_500_error_code", icapm::VerdictKind::Error, {}, "X-Error-Code: 4 (resource exhausted)"},
    // McAfee / Skyhigh
    {"mcafee_403_virusfound", icapm::VerdictKind::Infected, {"blocked by scanner (HTTP 403 VirusFound)"}, "HTTP 403"},
    {"mcafee_custom_virus_id", icapm::VerdictKind::Infected, {"EICAR test file"}, ""},
    {"mcafee_418", icapm::VerdictKind::Error, {}, "418"},
    // Trend Micro
    {"trend_infected", icapm::VerdictKind::Infected, {"Eicar_test_file"}, ""},
    // Sophos
    {"sophos_infected", icapm::VerdictKind::Infected, {"EICAR-AV-Test"}, "X-Blocked"},
    {"sophos_blocked_only", icapm::VerdictKind::Infected, {"Virus found during virus scan"}, "X-Blocked"},
    // OPSWAT
    {"opswat_blocked", icapm::VerdictKind::Infected, {"Infected"}, "X-Response-Info"},
    {"opswat_blocked_named", icapm::VerdictKind::Infected, {"EICAR-Test-File"}, ""},
    {"opswat_allowed_204", icapm::VerdictKind::Clean, {}, ""},
    // F-Secure
    {"fsecure_infected", icapm::VerdictKind::Infected, {"EICAR_Test_File"}, "X-FSecure-Scan-Result"},
    {"fsecure_clean_204", icapm::VerdictKind::Clean, {}, ""},
    // Bitdefender
    {"bitdefender_infected", icapm::VerdictKind::Infected, {"EICAR-Test-File (not a virus)"}, ""},
    // generic status handling
    {"generic_408", icapm::VerdictKind::Error, {}, "408"},
    {"generic_501", icapm::VerdictKind::Error, {}, "501"},
    {"generic_502", icapm::VerdictKind::Error, {}, "502"},
    {"generic_503", icapm::VerdictKind::Error, {}, "503"},
    {"generic_505", icapm::VerdictKind::Error, {}, "505"},
    {"generic_403", icapm::VerdictKind::Error, {}, "403"},
    {"generic_206_blocked", icapm::VerdictKind::Infected, {"blocked by scanner"}, "206"},
    {"generic_infected_on_204", icapm::VerdictKind::Infected, {"Odd.Vendor"}, ""},
    {"generic_folded_virus_id", icapm::VerdictKind::Infected, {"Long.Threat.Name .Continued"}, ""},
    {"generic_200_no_encapsulated", icapm::VerdictKind::Infected, {"blocked by scanner"}, "without an encapsulated", true},
    {"generic_lf_only", icapm::VerdictKind::Clean, {}, ""},
    {"generic_chunk_extensions", icapm::VerdictKind::Clean, {}, "", true},
};

// kOptionsFiles - golden files that are OPTIONS replies, not RESPMOD.
inline const std::set<std::string> kOptionsFiles = {"cicap_options", "kaspersky_options", "fsecure_options"};

} // namespace icapm_test
