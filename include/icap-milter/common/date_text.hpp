// NAME
//   date_text.hpp - a Unix time as YYYY-MM-DD (UTC), for certificate expiry texts
#pragma once

#include <ctime>
#include <string>

namespace icapm {

// date_text - UTC calendar date of t.
inline std::string date_text(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

} // namespace icapm
