// NAME
//   options.cpp - ICAP OPTIONS reply -> ServerOptions
// SUMMARY
//   Reads Methods, ISTag, Preview, Allow, Options-TTL, Max-Connections,
//   Service and the Transfer-* lists, each bounded, plus any readable engine / definition version a
//   vendor offers (X-AV-Database-time, X-Definition-Info, F-Secure's
//   "FSAV-<date>" ISTag) so it can be logged next to the opaque ISTag.
// DIAGNOSTICS
//   Non-200 replies yield nullopt and a reason; malformed optional
//   headers are ignored (a bad Preview just means "no preview").
#include "icap-milter/icap/options.hpp"

#include "icap-milter/icap/rules.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace icapm {

namespace {

// Most methods kept from a Methods header.
constexpr std::size_t kMaxMethods = 16;

// parse_uint - plain decimal of at most 10 digits.
std::optional<std::uint64_t> parse_uint(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    if (s.empty() || s.size() > 10) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    return v;
}

} // namespace

// supports - whether Methods listed method.
bool ServerOptions::supports(std::string_view method) const {
    return std::any_of(methods.begin(), methods.end(),
                       [&](const std::string& m) { return iequals(m, method); });
}

// clean_istag - an opaque token; only printable bytes, 32 at most.
std::string clean_istag(std::string_view raw) {
    std::string s = clean_threat_name(raw);
    if (s.size() > kMaxIstag) s.resize(kMaxIstag);
    return s;
}

// parse_server_options - a 200 OPTIONS reply into ServerOptions.
std::optional<ServerOptions> parse_server_options(const IcapResponse& r, std::string* error) {
    if (r.status != 200) {
        *error = fmt::format("OPTIONS answered ICAP {} {}", r.status, clean_threat_name(r.reason));
        return std::nullopt;
    }
    const Headers& h = r.headers;
    ServerOptions o;
    for (const auto* f : h.find_all("Methods")) {
        std::string_view v = f->value;
        while (!v.empty() && o.methods.size() < kMaxMethods) {
            auto comma = v.find(',');
            std::string m = clean_threat_name(v.substr(0, comma));
            std::transform(m.begin(), m.end(), m.begin(),
                           [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
            if (!m.empty() && m.size() <= 32 && !o.supports(m)) o.methods.push_back(std::move(m));
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    if (const auto* f = h.find("ISTag")) o.istag = clean_istag(f->value);
    if (const auto* f = h.find("Preview"))
        if (auto n = parse_uint(f->value)) o.preview = static_cast<std::size_t>(std::min<std::uint64_t>(*n, kMaxPreviewOffered));
    o.allow_204 = h.has_token("Allow", "204");
    if (const auto* f = h.find("Options-TTL"))
        if (auto n = parse_uint(f->value))
            o.ttl = std::chrono::seconds(std::min<std::uint64_t>(*n, static_cast<std::uint64_t>(kMaxOptionsTtl.count())));
    if (const auto* f = h.find("Max-Connections"))
        if (auto n = parse_uint(f->value); n && *n > 0 && *n <= 1000000) o.max_connections = static_cast<unsigned>(*n);
    if (const auto* f = h.find("Service")) o.service = clean_threat_name(f->value);
    if (const auto* f = h.find("Transfer-Preview")) o.transfer_preview = clean_threat_name(f->value);
    if (const auto* f = h.find("Transfer-Ignore")) o.transfer_ignore = clean_threat_name(f->value);
    if (const auto* f = h.find("Transfer-Complete")) o.transfer_complete = clean_threat_name(f->value);

    std::string info;
    auto append = [&](std::string_view name, std::string_view value) {
        std::string v = clean_threat_name(value);
        if (v.empty()) return;
        if (!info.empty()) info += "; ";
        info += fmt::format("{}={}", name, v);
    };
    for (const char* name : {"X-AV-Database-time", "X-Definition-Info"})
        if (const auto* f = h.find(name)) append(name, f->value);
    if (o.istag.rfind("FSAV-", 0) == 0) append("ISTag", o.istag);
    o.version_info = std::move(info);
    return o;
}

} // namespace icapm
