// NAME
//   main.cpp - icap-milter: command line, start-up order, signals
// SUMMARY
//   Reads the config, opens privileged things (milter socket, pid file,
//   the Prometheus endpoint of MetricsListen, the scan-token signing
//   key, the TLS CA file, client certificate and key), drops to User,
//   starts the scanner pool
//   and runs libmilter's loop in its own thread. The main thread owns
//   the signals: SIGHUP reloads the config as an atomic snapshot swap
//   (a bad file keeps the old one; TLS files User may not read keep
//   their contents from before, with a warning),
//   SIGTERM and SIGINT stop accepting, drain open sessions and exit.
//   The alert thread (stats/alerts.hpp) starts once the milter listens,
//   and sends the stop alert, within 5 s, before the scanner stops.
//   The control socket (ControlSocket) is opened with the milter socket
//   and served on a thread of its own (stats/control.hpp); its reload
//   command takes the SIGHUP path and waits for the result.
// DIAGNOSTICS
//   Exit status: 0 normal stop or a good -t; 78 (EX_CONFIG) bad config;
//   1 start-up failure (socket, privileges, TLS, MetricsListen), logged
//   at critical.
#include "icap-milter/config/config.hpp"
#include "icap-milter/config/paths.hpp"
#include "icap-milter/log/log.hpp"
#include "icap-milter/milter/callbacks.hpp"
#include "icap-milter/milter/daemon.hpp"
#include "icap-milter/milter/notify.hpp"
#include "icap-milter/milter/runtime.hpp"
#include "icap-milter/mime/walker.hpp"
#include "icap-milter/net/tls.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/stats/alerts.hpp"
#include "icap-milter/stats/control.hpp"
#include "icap-milter/stats/control_commands.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap-milter/stats/metrics.hpp"
#include "icap-milter/token/keys.hpp"
#include "tools/check_scanners.hpp"

#include <getopt.h>
#include <malloc.h>
#include <libmilter/mfapi.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.1.0"
#endif

namespace {

constexpr int kExitConfig = 78;

// Options - what the command line asked for.
struct Options {
    std::string config_path = icapm::paths::config_file();
    bool foreground = false;
    bool test_only = false;
    bool dump = false;
    bool check_scanners = false;
};

// usage - the synopsis, as in icap-milter(8).
void usage(std::FILE* out) {
    std::fprintf(out,
                 "usage: icap-milter [-c FILE] [-f] [-t] [--dump-config] [--check-scanners] [-V] [-h]\n"
                 "  -c, --config FILE   configuration file (default %s)\n"
                 "  -f, --foreground    do not detach from the terminal\n"
                 "  -t, --test-config   check the configuration and exit\n"
                 "      --dump-config   print every key with its value and exit\n"
                 "      --check-scanners  ask every IcapServer for OPTIONS, print a report and exit\n"
                 "  -V, --version       print the version and exit\n"
                 "  -h, --help          this text\n",
                 icapm::paths::config_file().c_str());
}

// parse_args - getopt_long; nullopt means exit with the given status.
std::optional<Options> parse_args(int argc, char** argv, int& status) {
    static const option longopts[] = {{"config", required_argument, nullptr, 'c'},
                                      {"foreground", no_argument, nullptr, 'f'},
                                      {"test-config", no_argument, nullptr, 't'},
                                      {"dump-config", no_argument, nullptr, 'D'},
                                      {"check-scanners", no_argument, nullptr, 'S'},
                                      {"version", no_argument, nullptr, 'V'},
                                      {"help", no_argument, nullptr, 'h'},
                                      {nullptr, 0, nullptr, 0}};
    Options o;
    int c;
    while ((c = getopt_long(argc, argv, "c:ftVh", longopts, nullptr)) != -1) {
        switch (c) {
        case 'c': o.config_path = optarg; break;
        case 'f': o.foreground = true; break;
        case 't': o.test_only = true; break;
        case 'D': o.dump = true; break;
        case 'S': o.check_scanners = true; break;
        case 'V': std::printf("icap-milter %s\n", PACKAGE_VERSION); status = 0; return std::nullopt;
        case 'h': usage(stdout); status = 0; return std::nullopt;
        default: usage(stderr); status = 64; return std::nullopt;
        }
    }
    if (optind != argc) {
        usage(stderr);
        status = 64;
        return std::nullopt;
    }
    return o;
}

// reload_tokens - the token keys for a reload: the trusted directory is
// read again (public keys); the private key stays the one read at start,
// before the privilege drop, and a changed TokenSigningKey needs a restart.
icapm::TokenKeys reload_tokens(const icapm::Config& config, const std::shared_ptr<const icapm::Runtime>& old) {
    icapm::TokenKeys running = old ? old->tokens : icapm::TokenKeys{};
    const std::string old_path = old ? old->config->token_signing_key : std::string();
    if (config.token_signing_key.empty())
        running.own.reset();
    else if (config.token_signing_key != old_path)
        spdlog::warn("reload: TokenSigningKey changes take effect only after a restart");
    return icapm::reload_trusted_keys(config, running);
}

// Reloader - a thread that rebuilds the runtime on request, so the signal
// loop returns to sigwait at once.
class Reloader {
public:
    explicit Reloader(std::string path) : path_(std::move(path)), thread_([this] { run(); }) {}
    ~Reloader() {
        {
            std::lock_guard lock(mutex_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    // request - ask for one reload (several requests in a row coalesce);
    // returns the request's number, for wait().
    std::uint64_t request() {
        std::uint64_t n;
        {
            std::lock_guard lock(mutex_);
            pending_ = true;
            n = ++requested_;
        }
        cv_.notify_all();
        return n;
    }
    // wait - until a reload that began after request n finished, at most
    // limit; nullopt on timeout, else whether that reload succeeded (and *why not).
    std::optional<bool> wait(std::uint64_t n, std::chrono::milliseconds limit, std::string* why) {
        std::unique_lock lock(mutex_);
        if (!done_cv_.wait_for(lock, limit, [&] { return finished_ >= n; })) return std::nullopt;
        *why = last_error_;
        return last_ok_;
    }

private:
    // run - wait for requests and reload.
    void run() {
        std::unique_lock lock(mutex_);
        while (true) {
            cv_.wait(lock, [&] { return stop_ || pending_; });
            if (stop_) return;
            pending_ = false;
            const std::uint64_t covers = requested_;
            lock.unlock();
            std::string why;
            const bool ok = reload(&why);
            lock.lock();
            finished_ = covers;
            last_ok_ = ok;
            last_error_ = std::move(why);
            done_cv_.notify_all();
        }
    }
    // reload - one reload, told to the service manager (Type=notify).
    bool reload(std::string* why) {
        icapm::notify_service("RELOADING=1");
        const bool ok = reload_config(why);
        icapm::notify_service("READY=1");
        return ok;
    }
    // reload_config - load, validate, build; keep the old runtime on any failure.
    bool reload_config(std::string* why) {
        try {
            std::vector<icapm::ConfigError> errors;
            auto config = icapm::load_config(path_, errors);
            if (!config) {
                for (const auto& e : errors) spdlog::error("reload: {}", e.str());
                spdlog::error("reload: {} has errors; keeping the running configuration", path_);
                *why = errors.empty() ? path_ + " has errors" : errors.front().str();
                if (errors.size() > 1) *why += " (and " + std::to_string(errors.size() - 1) + " more)";
                return false;
            }
            auto old = icapm::current_runtime();
            if (old && (old->config->socket != config->socket || old->config->user != config->user ||
                        old->config->pid_file != config->pid_file ||
                        old->config->metrics_listen != config->metrics_listen))
                spdlog::warn("reload: Socket, User, PidFile and MetricsListen changes take effect only after a "
                             "restart");
            if (old && (old->config->control_socket != config->control_socket ||
                        old->config->control_socket_mode != config->control_socket_mode ||
                        old->config->control_socket_group != config->control_socket_group))
                spdlog::warn("reload: ControlSocket changes take effect only after a restart");
            auto tls_files = icapm::load_tls_files(*config, old ? old->tls_files.get() : nullptr);
            auto rt = icapm::make_runtime(config, reload_tokens(*config, old), std::move(tls_files));
            icapm::log_init(config->log_target, config->log_level);
            icapm::install_runtime(rt);
            spdlog::info("reload: configuration {} loaded", path_);
            return true;
        } catch (const std::exception& e) {
            spdlog::error("reload: {}; keeping the running configuration", e.what());
            *why = e.what();
            return false;
        }
    }

    std::string path_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::condition_variable done_cv_; // a reload finished
    std::uint64_t requested_ = 0;     // requests so far
    std::uint64_t finished_ = 0;      // the last request a finished reload covered
    bool last_ok_ = false;            // how that reload went
    std::string last_error_;          // ... and why it failed
    bool pending_ = false;
    bool stop_ = false;
    std::thread thread_;
};

// control_reload - the control socket's reload: the SIGHUP path, waited for (bounded).
icapm::ControlReply control_reload(Reloader& reloader) {
    spdlog::info("control: reloading configuration");
    std::string why;
    const auto result = reloader.wait(reloader.request(), std::chrono::seconds(30), &why);
    if (!result) return {false, "reload still running after 30 s; see the log"};
    if (!*result) return {false, "reload failed: " + why + "; the running configuration stays (see the log)"};
    return {true, "reloaded"};
}

// open_control - the control socket, while still privileged; a failure is
// logged and the milter runs without it (mail does not wait for a
// monitoring socket).
icapm::UniqueFd open_control(const icapm::Config& c) {
    if (c.control_socket.empty()) return {};
    try {
        return icapm::open_control_socket(c.control_socket, c.control_socket_mode, c.user, c.control_socket_group);
    } catch (const std::exception& e) {
        spdlog::error("control: {}; running without the control socket", e.what());
        return {};
    }
}

// log_stats - the counters as one info line (SIGUSR1, and at stop).
void log_stats() {
    std::string text = icapm::counters().render();
    if (auto rt = icapm::current_runtime()) text += "InScannerQueue: " + std::to_string(rt->scanner->queued()) + "\n";
    for (auto& c : text)
        if (c == '\n') c = ' ';
    spdlog::info("stats: {}", text);
}

// signal_loop - the main thread waits here for HUP, USR1, TERM and INT;
// returns the name of the signal that stops it.
const char* signal_loop(const sigset_t& set, Reloader& reloader) {
    while (true) {
        int sig = 0;
        if (sigwait(&set, &sig) != 0) continue;
        if (sig == SIGUSR1) {
            log_stats();
            continue;
        }
        if (sig == SIGHUP) {
            spdlog::info("SIGHUP: reloading configuration");
            reloader.request();
            continue;
        }
        spdlog::info("{}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        return sig == SIGTERM ? "SIGTERM" : "SIGINT";
    }
}

// check_tls - build the scanner TLS context as the scanner would, when an
// icaps:// server is configured: throws on an unreadable CA file, a client
// certificate or key that cannot be loaded or do not match, or a bad cipher list.
void check_tls(const icapm::Config& c) { (void)icapm::make_scanner_tls(c); }

// open_metrics - the Prometheus endpoint when MetricsListen is set; opened
// before the privilege drop, so a port below 1024 works too. Throws when
// it cannot listen: a start-up error.
std::unique_ptr<icapm::MetricsServer> open_metrics(const icapm::Config& c) {
    if (c.metrics_listen.empty()) return nullptr;
    std::string why;
    auto where = icapm::parse_listen_address(c.metrics_listen, &why);
    if (!where) throw std::runtime_error("MetricsListen: " + why);
    auto metrics = std::make_unique<icapm::MetricsServer>(*where);
    spdlog::info("metrics: Prometheus endpoint listening on http://{}/metrics", where->str());
    return metrics;
}

// drain - wait (bounded) for open SMTP sessions to finish.
void drain(std::chrono::seconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (icapm::active_connections() > 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (icapm::active_connections() > 0)
        spdlog::warn("stopping with {} session(s) still open", icapm::active_connections());
}

// tune_malloc - keep message-sized buffers (spools, decoded parts) in
// the heap and keep freed heap memory. glibc's defaults serve them from
// mmap and trim the heap, so every message faults its buffers in again:
// a third of the CPU of spooling and walking a 137 KB message (0.34 ->
// 0.23 ms). Memory stays bounded by the spool limits; what is freed is
// reused by the next message rather than returned to the kernel. Two
// arenas, not glibc's eight per core: each arena keeps its own peak, and
// with one per busy libmilter thread the sum of those peaks (97 MB at 50
// sessions of 1 MB messages) was far above what was ever in use at once.
void tune_malloc() {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_ARENA_MAX, 2);
}

// run - everything after the config is known to be good.
int run(const Options& opt, std::shared_ptr<const icapm::Config> config) {
    tune_malloc();
    icapm::mime_init();
    if (!opt.foreground) icapm::daemonize();

    // Signals: the main thread takes HUP/TERM/INT with sigwait; every other
    // thread (scanner workers, libmilter's) inherits them blocked.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    signal(SIGPIPE, SIG_IGN);

    if (!icapm::milter_register()) return 1;
    std::optional<icapm::PidFile> pid_file;
    std::unique_ptr<icapm::MetricsServer> metrics; // outlives every scan thread that reports to it
    icapm::UniqueFd control_fd;
    try {
        icapm::open_milter_socket(*config);
        control_fd = open_control(*config);
        if (!config->pid_file.empty()) pid_file.emplace(config->pid_file);
        metrics = open_metrics(*config);
        // The token signing key is readable only by root (or its owner): read it now.
        icapm::TokenKeys tokens = icapm::load_token_keys(*config);
        // So are the TLS client key and often the CA and certificate.
        auto tls_files = icapm::load_tls_files(*config, nullptr);
        icapm::drop_privileges(config->user);
        if (tokens.enabled())
            spdlog::info("scan tokens: {}signing key {}, {} trusted key(s)", tokens.own ? "" : "no ",
                         tokens.own ? tokens.own->public_key().thumbprint() : std::string("-"),
                         tokens.trusted ? tokens.trusted->size() : 0);
        icapm::install_runtime(icapm::make_runtime(config, std::move(tokens), std::move(tls_files)));
    } catch (const std::exception& e) {
        spdlog::critical("start-up failed: {}", e.what());
        return 1;
    }
    spdlog::info("icap-milter {} listening on {} with {} scan thread(s), {} scanner(s)", PACKAGE_VERSION,
                 config->socket, config->scan_threads, config->icap_servers.size());
    icapm::alerts_start(PACKAGE_VERSION); // its own thread: sends the start alert, then watches

    int milter_status = 0;
    // libmilter runs a signal thread of its own that also waits for TERM,
    // INT and HUP: when it takes one, smfi_main returns without the main
    // thread hearing of it. Wake the main thread then, so it stops too.
    const pthread_t main_thread = pthread_self();
    std::thread milter_thread([&] {
        milter_status = smfi_main();
        pthread_kill(main_thread, SIGTERM);
    });
    const char* stop_signal = "SIGTERM";
    {
        Reloader reloader(opt.config_path);
        // After the reloader (its reload command needs it), destroyed before it.
        std::optional<icapm::ControlServer> control;
        if (control_fd) {
            try {
                control.emplace(std::move(control_fd), config->control_socket,
                                [&reloader](const icapm::ControlRequest& r) {
                                    return icapm::run_control_command(r, {[&reloader] { return control_reload(reloader); }});
                                });
            } catch (const std::exception& e) {
                spdlog::error("control: cannot start: {}; running without the control socket", e.what());
            }
        }
        icapm::notify_service("READY=1\nSTATUS=listening on " + config->socket);
        stop_signal = signal_loop(set, reloader);
    }
    icapm::notify_service("STOPPING=1");
    smfi_stop();
    milter_thread.join();
    // Bounded, so a stop never hangs on an idle MTA connection: a session
    // still open afterwards ends with the process, and the MTA's
    // milter_default_action (tempfail) keeps its mail.
    drain(std::chrono::seconds(config->milter_timeout < 10 ? config->milter_timeout : 10));
    log_stats();
    icapm::alerts_stop(stop_signal, std::chrono::seconds(5)); // stop alert, bounded wait
    icapm::install_runtime(nullptr); // the scanner finishes queued work and joins its workers
    // A session the drain gave up on may still end a message and report
    // its time to the endpoint: then the endpoint is left to the exit.
    if (icapm::active_connections() == 0)
        metrics.reset();
    else
        (void)metrics.release();
    pid_file.reset(); // may warn (after the privilege drop): while the logger still exists
    spdlog::info("icap-milter stopped");
    spdlog::shutdown();
    return milter_status == MI_SUCCESS ? 0 : 1;
}

} // namespace

// main - parse, check, start.
int main(int argc, char** argv) {
    try {
        int status = 0;
        auto opt = parse_args(argc, argv, status);
        if (!opt) return status;
        std::vector<icapm::ConfigError> errors;
        auto config = icapm::load_config(opt->config_path, errors);
        if (!config) {
            for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.str().c_str());
            return kExitConfig;
        }
        if (opt->test_only) {
            try {
                (void)icapm::load_token_keys(*config); // key modes and formats are part of the check
                check_tls(*config);                     // CA file, client certificate and key, ciphers
            } catch (const std::exception& e) {
                std::fprintf(stderr, "%s: %s\n", opt->config_path.c_str(), e.what());
                return kExitConfig;
            }
            std::printf("%s: configuration OK\n", opt->config_path.c_str());
            return 0;
        }
        if (opt->check_scanners) return icapm::check_scanners(*config, stdout);
        if (opt->dump) {
            std::fputs(icapm::dump_config(*config).c_str(), stdout);
            return 0;
        }
        icapm::log_init(config->log_target, config->log_level);
        return run(*opt, config);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "icap-milter: fatal: %s\n", e.what());
        try {
            spdlog::critical("fatal: {}", e.what());
        } catch (...) {
        }
        return 1;
    }
}
