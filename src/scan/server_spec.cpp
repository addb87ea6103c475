// NAME
//   server_spec.cpp - parse and print IcapServer values
// SUMMARY
//   Words after the URI are key=value pairs separated by blanks; keys are
//   lower case. Values are bounded (numbers 1-100 or 1-10000, user agent
//   printable ASCII up to 100 bytes) since they end up in requests.
// DIAGNOSTICS
//   Unknown keys, repeated keys and bad values are errors naming the word.
#include "icap-milter/scan/server_spec.hpp"

#include <stdexcept>

#include <charconv>
#include <vector>

namespace icapm {

namespace {

// is_blank - space or tab.
bool is_blank(char c) noexcept { return c == ' ' || c == '\t'; }

// split_words - blank-separated words.
std::vector<std::string_view> split_words(std::string_view text) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && is_blank(text[i])) ++i;
        std::size_t start = i;
        while (i < text.size() && !is_blank(text[i])) ++i;
        if (i > start) out.push_back(text.substr(start, i - start));
    }
    return out;
}

// number_in - a decimal number within [lo, hi].
std::optional<unsigned> number_in(std::string_view v, unsigned lo, unsigned hi) {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size() || n < lo || n > hi) return std::nullopt;
    return n;
}

// good_agent - printable ASCII without blanks, 1-100 bytes: it goes into a header.
bool good_agent(std::string_view v) {
    if (v.empty() || v.size() > 100) return false;
    for (char c : v)
        if (c <= ' ' || c > '~') return false;
    return true;
}

} // namespace

// str - the URI plus non-default options, in a fixed order.
std::string ServerSpec::str() const {
    std::string s = uri.str();
    if (weight != 1) s += " weight=" + std::to_string(weight);
    if (priority != 1) s += " priority=" + std::to_string(priority);
    if (!preview) s += " preview=off";
    if (user_agent != "icap-milter") s += " user-agent=" + user_agent;
    if (max_connections) s += " max-connections=" + std::to_string(max_connections);
    return s;
}

// parse_server_spec - URI first, then key=value words.
std::optional<ServerSpec> parse_server_spec(std::string_view text, std::string* error) {
    auto words = split_words(text);
    if (words.empty()) {
        *error = "empty server";
        return std::nullopt;
    }
    ServerSpec s;
    std::string why;
    auto uri = parse_icap_uri(words[0], &why);
    if (!uri) {
        *error = "bad ICAP URI '" + std::string(words[0]) + "': " + why;
        return std::nullopt;
    }
    s.uri = *uri;
    std::vector<std::string_view> seen;
    for (std::size_t i = 1; i < words.size(); ++i) {
        std::string_view w = words[i];
        auto eq = w.find('=');
        std::string_view key = w.substr(0, eq), value = eq == std::string_view::npos ? "" : w.substr(eq + 1);
        auto bad = [&](const char* expect) {
            *error = "bad server option '" + std::string(w) + "' (" + expect + ")";
            return std::nullopt;
        };
        if (eq == std::string_view::npos || value.empty()) return bad("expected key=value");
        for (auto k : seen)
            if (k == key) return bad("given twice");
        seen.push_back(key);
        if (key == "weight") {
            auto n = number_in(value, 1, 100);
            if (!n) return bad("weight is 1-100");
            s.weight = *n;
        } else if (key == "priority") {
            auto n = number_in(value, 1, 100);
            if (!n) return bad("priority is 1-100, lower first");
            s.priority = *n;
        } else if (key == "preview") {
            if (value == "auto" || value == "on")
                s.preview = true;
            else if (value == "off")
                s.preview = false;
            else
                return bad("preview is auto or off");
        } else if (key == "user-agent") {
            if (!good_agent(value)) return bad("user-agent is printable ASCII without blanks, up to 100 bytes");
            s.user_agent = std::string(value);
        } else if (key == "max-connections") {
            auto n = number_in(value, 1, 10000);
            if (!n) return bad("max-connections is 1-10000");
            s.max_connections = *n;
        } else {
            return bad("known options: weight, priority, preview, user-agent, max-connections");
        }
    }
    return s;
}

// parse_server_specs - all lines, or an exception for the first bad one.
std::vector<ServerSpec> parse_server_specs(const std::vector<std::string>& lines) {
    std::vector<ServerSpec> specs;
    for (const auto& text : lines) {
        std::string error;
        auto spec = parse_server_spec(text, &error);
        if (!spec) throw std::runtime_error("IcapServer " + text + ": " + error);
        specs.push_back(std::move(*spec));
    }
    return specs;
}

} // namespace icapm
