// NAME
//   rules.hpp - turn an ICAP reply into a Verdict (vendor rules)
// SUMMARY
//   Never decides from the ICAP status alone: infection markers of every
//   supported vendor are looked for first (X-Infection-Found, X-Virus-ID,
//   X-Violations-Found, X-Response-Info, X-Blocked*, X-FSecure-*, an
//   encapsulated HTTP 4xx). Without a marker, 204 is clean, and 200 is
//   clean only when the body came back byte for byte; anything else is
//   unscannable or an error, never clean by default.
// DIAGNOSTICS
//   Pure functions; they do not throw on any response content.
#pragma once

#include "icap-milter/common/sha256.hpp"
#include "icap-milter/icap/response.hpp"
#include "icap-milter/icap/verdict.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// Longest threat name kept, and most names kept per verdict.
inline constexpr std::size_t kMaxThreatName = 128;
inline constexpr std::size_t kMaxThreats = 16;

// SentBody - what the client sent, to recognise an unmodified echo.
struct SentBody {
    std::uint64_t length = 0;  // bytes of the item sent
    // Their SHA-256, asked for only when a 200 returns a body of the same
    // length: most replies are 204, and hashing every byte sent cost the
    // send path a second SHA-256 pass. Empty: unknown, never an echo.
    std::function<Digest()> sha256;
    bool complete = true;      // the whole item reached the server
};

// Markers - the infection signals found in one reply.
struct Markers {
    std::vector<std::string> threats;      // named threats (Infected)
    std::vector<std::string> policy;       // Type=2 names (container / policy)
    std::vector<std::string> signals;      // which headers fired, for the log
    bool infected = false;                 // some marker other than Type=2
};

// find_markers - collect every vendor's infection signals from r.
Markers find_markers(const IcapResponse& r);

// classify_respmod - the verdict for a complete RESPMOD reply. istag and
// server are left for the caller to fill.
Verdict classify_respmod(const IcapResponse& r, const SentBody& sent);

// clean_threat_name - printable ASCII, quotes and blanks trimmed, at most
// kMaxThreatName bytes: names end up in SMTP replies and mail headers.
std::string clean_threat_name(std::string_view raw);

// unquote - strip one pair of surrounding double quotes and blanks.
std::string_view unquote(std::string_view s) noexcept;

} // namespace icapm
