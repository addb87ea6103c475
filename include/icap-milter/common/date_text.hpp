// NAME
//   date_text.hpp - a Unix time as text: YYYY-MM-DD (certificate expiry), RFC 5322 (templates)
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace icapm {

// utc_text - t in UTC, formatted by strftime (at most 63 bytes).
inline std::string utc_text(std::time_t t, const char* format) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

// date_text - UTC calendar date of t.
inline std::string date_text(std::time_t t) { return utc_text(t, "%Y-%m-%d"); }

// iso_time_text - "2026-11-22T06:38:34Z" (statistics, health), "never" for 0.
inline std::string iso_time_text(std::int64_t t) {
    return t == 0 ? std::string("never") : utc_text(static_cast<std::time_t>(t), "%Y-%m-%dT%H:%M:%SZ");
}

// mail_date_text - t as an RFC 5322 date in UTC ("Fri, 27 Nov 2026 19:00:00 +0000").
inline std::string mail_date_text(std::time_t t) { return utc_text(t, "%a, %d %b %Y %H:%M:%S +0000"); }

} // namespace icapm
