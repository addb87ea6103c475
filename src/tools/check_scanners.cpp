// NAME
//   check_scanners.cpp - the troubleshooting report of --check-scanners
// SUMMARY
//   For each IcapServer, a fresh session (no pool, no breaker) sends one
//   OPTIONS with the configured timeouts and TLS settings and reports
//   what came back. Nothing is scanned and no mail is touched.
// DIAGNOSTICS
//   A server that fails prints "health: Error" with the reason (refused,
//   timeout, TLS verification failure, no RESPMOD). Exit status as in
//   check_scanners.hpp.
#include "check_scanners.hpp"

#include "icap-milter/common/date_text.hpp"
#include "icap-milter/net/tls.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/scan/server_spec.hpp"
#include "icap-milter/scan/session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <stdexcept>

namespace icapm {

namespace {

// line - one "  label: value" row.
void line(std::FILE* out, const char* label, const std::string& value) {
    std::fprintf(out, "  %-16s %s\n", label, value.c_str());
}

} // namespace

// check_scanners - OPTIONS to each server, then the report.
int check_scanners(const Config& c, std::FILE* out) {
    std::shared_ptr<const TlsContext> tls;
    std::vector<ServerSpec> specs;
    for (const auto& text : c.icap_servers) {
        std::string error;
        auto spec = parse_server_spec(text, &error);
        if (!spec) {
            std::fprintf(out, "%s: %s\n", text.c_str(), error.c_str());
            return 2;
        }
        specs.push_back(*spec);
    }
    try {
        tls = make_scanner_tls(c);
    } catch (const std::exception& e) {
        std::fprintf(out, "TLS settings: %s\n", e.what());
        return 2;
    }
    // The report says everything; session warnings would only interleave.
    struct QuietLog {
        spdlog::level::level_enum old = spdlog::get_level();
        QuietLog() { spdlog::set_level(spdlog::level::off); }
        ~QuietLog() { spdlog::set_level(old); }
    } quiet;
    Timeouts timeouts;
    timeouts.connect = c.connect_timeout;
    timeouts.io = c.io_timeout;
    timeouts.total = c.connect_timeout + c.io_timeout;
    unsigned usable = 0;
    for (const auto& s : specs) {
        std::fprintf(out, "%s\n", s.str().c_str());
        IcapSession session(s.uri, tls, timeouts, s.user_agent);
        std::string error;
        const auto t0 = std::chrono::steady_clock::now();
        auto opts = session.refresh_options(&error);
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (opts && !opts->supports("RESPMOD")) {
            error = "the service does not offer RESPMOD";
            opts.reset();
        }
        std::string warning;
        if (auto peer = session.tls_info()) {
            line(out, "tls:", fmt::format("{} {}{}", peer->protocol, peer->cipher, peer->resumed ? " resumed" : ""));
            line(out, "certificate:", peer->subject.empty() ? "(none)" : peer->subject);
            line(out, "issuer:", peer->issuer);
            if (peer->not_after) {
                const long days = peer->days_left(std::time(nullptr));
                line(out, "expires:", fmt::format("{} ({} days)", date_text(peer->not_after), days));
                if (days < 0)
                    warning = "certificate expired (accepted by TlsAcceptExpired)";
                else if (c.tls_expiry_warning_days && days < static_cast<long>(c.tls_expiry_warning_days))
                    warning = fmt::format("certificate expires within {} days", c.tls_expiry_warning_days);
            }
        } else if (s.uri.tls) {
            line(out, "tls:", "no connection");
        } else {
            line(out, "tls:", "none (plain icap://)");
        }
        if (!opts) {
            line(out, "health:", "Error");
            line(out, "error:", error);
            line(out, "round trip:", fmt::format("{:.1f} ms (failed)", ms));
            std::fputc('\n', out);
            continue;
        }
        ++usable;
        line(out, "health:", warning.empty() ? "Service validated" : "Warnings: " + warning);
        line(out, "service:", opts->service.empty() ? "(none)" : opts->service);
        line(out, "istag:", "\"" + opts->istag + "\"");
        if (!opts->version_info.empty()) line(out, "version:", opts->version_info);
        line(out, "preview:", !opts->preview ? std::string("not offered")
                                  : fmt::format("{} bytes{}", *opts->preview, s.preview ? "" : " (off by config)"));
        const unsigned own = s.max_connections ? s.max_connections : c.scan_threads;
        line(out, "max-connections:",
             opts->max_connections
                 ? fmt::format("{} (our cap {})", *opts->max_connections, std::min(own, *opts->max_connections))
                 : fmt::format("not given (our cap {})", own));
        line(out, "options-ttl:", opts->ttl.count() ? fmt::format("{}s", opts->ttl.count()) : "not given");
        line(out, "allow-204:", opts->allow_204 ? "yes" : "no");
        line(out, "round trip:", fmt::format("{:.1f} ms", ms));
        std::fputc('\n', out);
    }
    std::fprintf(out, "%u of %zu scanner(s) usable\n", usable, specs.size());
    return usable ? 0 : 1;
}

} // namespace icapm
