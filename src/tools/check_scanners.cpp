// NAME
//   check_scanners.cpp - the troubleshooting report of --check-scanners
// SUMMARY
//   For each IcapServer, a fresh session (no pool, no breaker) sends one
//   OPTIONS with the configured timeouts and TLS settings and reports
//   what came back. With ScannerSelfTest on (the default) it then runs
//   the self-test in the foreground, as the daemon does at start: the
//   EICAR canaries (plain, zip, PDF, and a MaxScanSize object halved
//   after each miss), one line per canary sent, the largest part the
//   server is trusted with, what it misses and the c-icap fix. No mail
//   is touched.
// DIAGNOSTICS
//   A server that fails prints "health: Error" with the reason (refused,
//   timeout, TLS verification failure, no RESPMOD, EICAR not detected,
//   self-test not done). Misses print "health: Warnings". Exit status as
//   in check_scanners.hpp.
#include "check_scanners.hpp"

#include "icap-milter/common/date_text.hpp"
#include "icap-milter/net/tls.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/scan/self_test.hpp"
#include "icap-milter/scan/server_spec.hpp"
#include "icap-milter/scan/session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <stdexcept>

namespace icapm {

namespace {

// line - one "  label: value" row.
void line(std::FILE* out, const char* label, const std::string& value) {
    std::fprintf(out, "  %-16s %s\n", label, value.c_str());
}

// canary_text - "flagged 68 bytes: NAME (12 ms)" / "missed ...: reason".
std::string canary_text(const CanaryResult& c) {
    const char* what = c.outcome == CanaryOutcome::Flagged ? "flagged"
                       : c.outcome == CanaryOutcome::Missed ? "MISSED"
                                                             : "not done";
    return fmt::format("{} {} bytes: {} ({} ms)", what, c.size, c.detail, c.ms);
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
        std::optional<SelfTestResult> test;
        if (c.scanner_self_test) {
            Timeouts tt = timeouts;
            tt.total = c.scan_timeout;
            IcapSession tester(s.uri, tls, tt, s.user_agent);
            tester.set_preview(s.preview);
            test = run_self_test(tester, SelfTestSettings{true, c.max_scan_size}, true);
        }
        std::string health = warning.empty() ? "Service validated" : "Warnings: " + warning;
        if (test && !test->complete) {
            health = "Error: self-test not done (" + test->error + ")";
        } else if (test && !test->eicar) {
            health = "Error: did not detect the EICAR test file; it would get no mail";
        } else if (test && !test->misses().empty()) {
            health = fmt::format("Warnings: misses {}{}", fmt::join(test->misses(), ", "),
                                 warning.empty() ? "" : "; " + warning);
        }
        if (!test || (test->complete && test->eicar)) ++usable;
        line(out, "health:", health);
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
        if (!test) {
            line(out, "self-test:", "off (ScannerSelfTest no: Clean rests on the scanner's word)");
        } else {
            line(out, "self-test:", test->summary() + fmt::format(" in {} ms", test->ms));
            for (const auto& k : test->canaries)
                line(out, ("canary " + k.name + ":").c_str(), canary_text(k));
            if (test->large_run)
                line(out, "large canary:", test->large_zipped ? "random bytes then EICAR, in a stored zip"
                                                              : "random bytes then EICAR");
            if (test->complete) {
                line(out, "trusted size:", test->eicar ? fmt::format("{} bytes", test->trusted_size)
                                                       : std::string("none: no mail"));
                auto m = test->misses();
                if (!m.empty()) line(out, "misses:", fmt::format("{}", fmt::join(m, ", ")));
                if (std::string fix = cicap_fix(*test); !fix.empty()) line(out, "c-icap fix:", fix);
            }
        }
        std::fputc('\n', out);
    }
    std::fprintf(out, "%u of %zu scanner(s) usable\n", usable, specs.size());
    return usable ? 0 : 1;
}

} // namespace icapm
