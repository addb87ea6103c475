// NAME
//   ascii.hpp - the small ASCII text helpers every component needs
// SUMMARY
//   Protocol tokens (MIME, ICAP, SMTP, config keywords) are ASCII and
//   case-insensitive; these never consult the locale.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace icapm {

// ascii_lower - one character in lower case (ASCII only).
constexpr char ascii_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// lower - a lower-case copy.
inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = ascii_lower(c);
    return out;
}

// iequals - equal ignoring ASCII case.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

// istarts_with - s begins with prefix, ignoring ASCII case.
constexpr bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// is_blank_char - space, tab, CR, LF, FF or VT.
constexpr bool is_blank_char(char c) noexcept {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

// trim - s without surrounding blanks.
constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_blank_char(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank_char(s.back())) s.remove_suffix(1);
    return s;
}

// blank - nothing but blanks (or nothing at all)?
constexpr bool blank(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(), [](char c) { return is_blank_char(c); });
}

} // namespace icapm
