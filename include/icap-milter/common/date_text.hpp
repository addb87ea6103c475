// NAME
//   date_text.hpp - a Unix time as text: YYYY-MM-DD (certificate expiry), RFC 5322 (templates)
#pragma once

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

// mail_date_text - t as an RFC 5322 date in UTC ("Fri, 27 Nov 2026 19:00:00 +0000").
inline std::string mail_date_text(std::time_t t) { return utc_text(t, "%a, %d %b %Y %H:%M:%S +0000"); }

} // namespace icapm
