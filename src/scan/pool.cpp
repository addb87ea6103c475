// NAME
//   pool.cpp - server selection, circuit breaker, probes, health, signatures
// SUMMARY
//   One mutex guards every server's counters and state; sessions are
//   created under it (no I/O) and used outside it. Probes (OPTIONS) run
//   outside the pool mutex under a per-server probe mutex, on a session
//   of their own that shares the server's OPTIONS cache and TLS session.
//   Self-test threads (one per server, with ScannerSelfTest on) send the
//   canaries on a session of their own, outside the pool mutex, and
//   record the result under it; acquire() then lends a server only for
//   parts its result trusts it with, and waits while a server's first
//   test is still running.
// DIAGNOSTICS
//   "scanner X is down: server= failures= last_error= probe_ms=",
//   "scanner X is up again: server= down_s=" and certificate warnings
//   are warnings; "virus definitions updated: server= old= new=" is
//   info. Nothing here throws for server trouble.
//   A server missing plain EICAR is logged at error level, other misses
//   as a warning with the c-icap fix, a passed test at info level.
#include "icap-milter/common/date_text.hpp"
#include "icap-milter/scan/pool.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/stats/counters.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>

namespace icapm {

// to_string - the seed's health words.
const char* to_string(Health h) noexcept {
    switch (h) {
    case Health::Pending: return "Pending validation";
    case Health::Validated: return "Service validated";
    case Health::Warnings: return "Warnings";
    case Health::Error: return "Error";
    }
    return "Error";
}

namespace {
// ServerState - the circuit breaker's states.
enum class ServerState { Pending, Up, Down };

// seconds_since - whole seconds from t to now, for logs.
long long seconds_since(Deadline t) {
    return std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now() - t).count();
}

} // namespace

struct ServerPool::Server {
    ServerSpec spec;
    std::string name;
    std::shared_ptr<ServerShared> shared = std::make_shared<ServerShared>();
    // Under the pool mutex:
    std::vector<std::unique_ptr<IcapSession>> idle;
    unsigned open = 0;
    unsigned outstanding = 0;
    std::optional<unsigned> server_max; // Max-Connections from OPTIONS
    ServerState state = ServerState::Pending;
    unsigned failures = 0;
    Deadline down_since{};
    Deadline next_probe{};
    std::uint64_t requests = 0;
    std::string istag, version, last_error, tls_warning;
    std::int64_t last_check = 0, istag_since = 0; // Unix times (icap-milterctl health)
    std::int64_t last_latency_ms = -1;
    double avg_latency_ms = -1;
    // Self-test, under the pool mutex:
    std::optional<SelfTestResult> test; // last complete result
    bool full_due = true;        // the whole set (large canary too) is due
    bool small_due = false;      // the small canaries are due (ISTag changed)
    bool attempt_failed = false; // the last attempt could not be done
    unsigned test_failures = 0;  // attempts in a row that could not be done
    std::string test_error;      // ... and why
    Deadline next_test{};        // no attempt before this
    // Probes, under probe_mutex only:
    std::mutex probe_mutex;
    std::unique_ptr<IcapSession> probe_session;

    // cap - the smaller of our cap and the server's Max-Connections.
    unsigned cap(unsigned fallback) const {
        unsigned c = spec.max_connections ? spec.max_connections : fallback;
        if (server_max && *server_max > 0) c = std::min(c, *server_max);
        return std::max(c, 1u);
    }
    // make_session - a new session to this server (no I/O yet).
    std::unique_ptr<IcapSession> make_session(const std::shared_ptr<const TlsContext>& tls,
                                              const Timeouts& t) const {
        auto s = std::make_unique<IcapSession>(spec.uri, tls, t, spec.user_agent, shared);
        s->set_preview(spec.preview);
        return s;
    }
};

// ServerPool - one Server per spec, all Pending.
ServerPool::ServerPool(std::vector<ServerSpec> specs, std::shared_ptr<const TlsContext> tls, Timeouts timeouts,
                       PoolSettings settings)
    : tls_(std::move(tls)), timeouts_(timeouts), settings_(settings) {
    for (auto& spec : specs) {
        auto s = std::make_unique<Server>();
        s->name = spec.uri.str();
        s->spec = std::move(spec);
        servers_.push_back(std::move(s));
    }
    if (settings_.self_test.enabled)
        for (std::size_t i = 0; i < servers_.size(); ++i) testers_.emplace_back([this, i] { test_loop(i); });
}

// ~ServerPool - stop the self-test threads; sessions close with their servers.
ServerPool::~ServerPool() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    test_due_.notify_all();
    for (auto& t : testers_) t.join();
}

// Lease - take ownership of a lent session.
ServerPool::Lease::Lease(ServerPool* pool, std::size_t server, std::unique_ptr<IcapSession> session) noexcept
    : pool_(pool), server_(server), session_(std::move(session)) {}

// Lease - move: the source no longer gives anything back.
ServerPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), server_(other.server_), session_(std::move(other.session_)) {}

// ~Lease - return the session to its server.
ServerPool::Lease::~Lease() {
    if (pool_ && session_) pool_->give_back(server_, std::move(session_));
}

// acquire - a small part of no particular class (size 0, Other).
std::optional<ServerPool::Lease> ServerPool::acquire(const std::vector<bool>& tried, Deadline until,
                                                     std::string* why) {
    NoServer kind;
    return acquire(tried, PartInfo{}, until, &kind, why);
}

// acquire - among servers trusted with part: best priority group, then
// least outstanding per weight; wait for a first self-test still running.
std::optional<ServerPool::Lease> ServerPool::acquire(const std::vector<bool>& tried, const PartInfo& part,
                                                     Deadline until, NoServer* kind, std::string* why) {
    std::unique_lock lock(mutex_);
    const std::size_t n = servers_.size();
    while (true) {
        std::optional<unsigned> best;
        bool pending = false, lendable_tried = false;
        std::vector<bool> lendable(n, false);
        for (std::size_t i = 0; i < n; ++i) {
            const Server& s = *servers_[i];
            if (s.state == ServerState::Down) continue;
            const bool was_tried = i < tried.size() && tried[i];
            const Fit f = fit(s, part);
            if (f == Fit::Lend) {
                if (was_tried) {
                    lendable_tried = true;
                    continue;
                }
                lendable[i] = true;
                best = std::min(best.value_or(s.spec.priority), s.spec.priority);
            } else if (f == Fit::Pending && !was_tried) {
                pending = true;
            }
        }
        if (!best && !pending) {
            if (lendable_tried) {
                *kind = NoServer::NoOtherToTry;
                *why = "no other scanner to try";
            } else {
                not_lent(part, kind, why);
            }
            return std::nullopt;
        }
        std::size_t pick = n;
        for (std::size_t k = 0; best && k < n; ++k) {
            const std::size_t i = (rotate_ + k) % n;
            const Server& s = *servers_[i];
            if (!lendable[i] || s.spec.priority != *best || s.outstanding >= s.cap(settings_.default_cap)) continue;
            if (pick == n) {
                pick = i;
                continue;
            }
            const Server& p = *servers_[pick];
            if (std::uint64_t{s.outstanding + 1} * p.spec.weight < std::uint64_t{p.outstanding + 1} * s.spec.weight)
                pick = i;
        }
        if (pick < n) {
            rotate_ = (pick + 1) % n;
            Server& s = *servers_[pick];
            ++s.outstanding;
            ++s.requests;
            std::unique_ptr<IcapSession> session;
            if (!s.idle.empty()) {
                session = std::move(s.idle.back());
                s.idle.pop_back();
            } else {
                session = s.make_session(tls_, timeouts_);
                ++s.open;
            }
            return Lease(this, pick, std::move(session));
        }
        if (slot_free_.wait_until(lock, until) == std::cv_status::timeout && SteadyClock::now() >= until) {
            *kind = NoServer::AllAtCap;
            *why = best ? "every scanner is at its connection cap"
                        : "scanner self-test not finished before the message deadline";
            return std::nullopt;
        }
    }
}

// fit - Lend when the self-test is off or trusts the server with part.
ServerPool::Fit ServerPool::fit(const Server& s, const PartInfo& part) const {
    if (!settings_.self_test.enabled) return Fit::Lend;
    if (!s.test) return Fit::Pending; // not yet, or retrying soon: wait (a Down server is skipped)
    if (!s.test->eicar) return Fit::Failed;
    return trusts(*s.test, part) ? Fit::Lend : Fit::NotTrusted;
}

// not_lent - NotTrusted (size or class) when a live server passed plain
// EICAR, else NoneUp: nothing up, or nothing that passed its self-test.
void ServerPool::not_lent(const PartInfo& part, NoServer* kind, std::string* why) const {
    bool any_live = false, usable = false, class_ok = false;
    std::uint64_t largest = 0;
    std::vector<std::string> class_missed, failed, untested;
    for (const auto& sp : servers_) {
        const Server& s = *sp;
        if (s.state == ServerState::Down) continue;
        any_live = true;
        if (!s.test) {
            untested.push_back(s.name + (s.test_error.empty() ? "" : " (" + s.test_error + ")"));
        } else if (!s.test->eicar) {
            failed.push_back(s.name);
        } else {
            usable = true;
            const bool ok = (part.kind != ContentClass::Archive || s.test->zip) &&
                            (part.kind != ContentClass::Document || s.test->pdf);
            if (ok) {
                class_ok = true;
                largest = std::max(largest, s.test->trusted_size);
            } else {
                class_missed.push_back(s.name);
            }
        }
    }
    auto names = [](const std::vector<std::string>& v) { return fmt::format("{}", fmt::join(v, ", ")); };
    if (!any_live) {
        *kind = NoServer::NoneUp;
        *why = "no scanner is up";
    } else if (usable && class_ok) {
        *kind = NoServer::NotTrusted;
        *why = fmt::format("no scanner proved it scans parts of {} bytes (largest canary flagged: {})", part.size,
                           largest);
    } else if (usable) {
        *kind = NoServer::NotTrusted;
        *why = fmt::format("no scanner proved it scans {} ({} missed the {} canary)", class_text(part.kind),
                           names(class_missed), part.kind == ContentClass::Archive ? "zip" : "PDF");
    } else if (!failed.empty()) {
        *kind = NoServer::NoneUp;
        *why = fmt::format("no scanner passed its self-test: {} did not detect the EICAR test file", names(failed));
    } else {
        *kind = NoServer::NoneUp;
        *why = fmt::format("no scanner has finished its self-test: {}", names(untested));
    }
    if (*kind == NoServer::NotTrusted) ++counters().not_trusted;
}

// give_back - keep the session for reuse unless the server is down or over its cap.
void ServerPool::give_back(std::size_t server, std::unique_ptr<IcapSession> session) {
    std::unique_ptr<IcapSession> doomed; // closed after the lock is released
    {
        std::lock_guard lock(mutex_);
        Server& s = *servers_[server];
        if (s.outstanding) --s.outstanding;
        if (s.state == ServerState::Down || s.open > s.cap(settings_.default_cap)) {
            doomed = std::move(session);
            if (s.open) --s.open;
        } else {
            s.idle.push_back(std::move(session));
        }
    }
    slot_free_.notify_all();
}

// report_success - close the breaker.
void ServerPool::report_success(std::size_t server, const std::string& istag, std::chrono::milliseconds latency) {
    bool changed = false;
    {
        std::lock_guard lock(mutex_);
        Server& s = *servers_[server];
        if (latency.count() >= 0) {
            s.last_latency_ms = latency.count();
            const double ms = static_cast<double>(latency.count());
            s.avg_latency_ms = s.avg_latency_ms < 0 ? ms : s.avg_latency_ms + (ms - s.avg_latency_ms) / 8;
        }
        s.failures = 0;
        s.last_error.clear();
        if (s.state != ServerState::Up) {
            if (s.state == ServerState::Down)
                spdlog::warn("scanner {} is up again: server={} down_s={}", s.name, s.name, seconds_since(s.down_since));
            s.state = ServerState::Up;
            changed = true;
        }
    }
    if (!istag.empty()) note_signature(server, istag, {});
    if (changed) publish();
}

// report_failure - count it; trip the breaker at the threshold.
void ServerPool::report_failure(std::size_t server, const std::string& reason) {
    std::vector<std::unique_ptr<IcapSession>> doomed;
    bool tripped = false;
    {
        std::lock_guard lock(mutex_);
        Server& s = *servers_[server];
        ++s.failures;
        s.last_error = reason;
        if (s.state != ServerState::Down && s.failures >= settings_.failures_to_down) {
            s.state = ServerState::Down;
            s.down_since = SteadyClock::now();
            s.next_probe = s.down_since + settings_.probe_interval;
            doomed.swap(s.idle);
            s.open -= std::min<unsigned>(s.open, static_cast<unsigned>(doomed.size()));
            s.shared->invalidate_options();
            tripped = true;
            spdlog::warn("scanner {} is down: server={} failures={} last_error=\"{}\" probe_ms={}", s.name, s.name,
                         s.failures, sanitize_value(reason, 300), settings_.probe_interval.count());
        }
    }
    if (tripped) {
        slot_free_.notify_all();
        publish();
    }
}

// any_up - some server is Pending or Up.
bool ServerPool::any_up() const {
    std::lock_guard lock(mutex_);
    return std::any_of(servers_.begin(), servers_.end(),
                       [](const auto& s) { return s->state != ServerState::Down; });
}

// probe - a forced OPTIONS round trip on the server's probe session.
bool ServerPool::probe(std::size_t server) {
    Server& s = *servers_[server];
    std::optional<ServerOptions> opts;
    std::optional<TlsPeerInfo> peer;
    std::string error;
    {
        std::lock_guard probe_lock(s.probe_mutex);
        if (!s.probe_session) s.probe_session = s.make_session(tls_, timeouts_);
        opts = s.probe_session->refresh_options(&error);
        if (opts && !opts->supports("RESPMOD")) {
            error = "ICAP service does not offer RESPMOD";
            opts.reset();
        }
        peer = s.probe_session->tls_info();
    }
    {
        std::lock_guard lock(mutex_);
        s.last_check = static_cast<std::int64_t>(std::time(nullptr));
    }
    if (!opts) {
        bool down;
        {
            std::lock_guard lock(mutex_);
            down = s.state == ServerState::Down;
            if (down) {
                s.next_probe = SteadyClock::now() + settings_.probe_interval;
                s.last_error = error;
            }
        }
        if (down)
            spdlog::debug("scanner {} still down: {}", s.name, error);
        else
            report_failure(server, "OPTIONS: " + error);
        return false;
    }
    std::string warning;
    if (peer && peer->not_after) {
        const std::time_t now = std::time(nullptr);
        const long days = peer->days_left(now);
        if (peer->not_after < now)
            warning = fmt::format("certificate \"{}\" expired on {} and is accepted (TlsAcceptExpired)",
                                  peer->subject, date_text(peer->not_after));
        else if (settings_.expiry_warning_days && days < static_cast<long>(settings_.expiry_warning_days))
            warning = fmt::format("certificate \"{}\" expires on {} ({} days left)", peer->subject,
                                  date_text(peer->not_after), days);
    }
    {
        std::lock_guard lock(mutex_);
        s.server_max = opts->max_connections;
        if (warning != s.tls_warning) {
            if (!warning.empty())
                spdlog::warn("scanner {}: certificate warning: server={} warning=\"{}\"", s.name, s.name,
                             sanitize_value(warning, 300));
            s.tls_warning = warning;
        }
    }
    report_success(server, {});
    note_signature(server, opts->istag, opts->version_info);
    publish();
    return true;
}

// maintain - due probes, OPTIONS refreshes and the health round (which
// also makes a new self-test due for servers that missed plain EICAR).
bool ServerPool::maintain(Deadline now) {
    const std::size_t n = servers_.size();
    std::vector<bool> done(n, false);
    for (std::size_t i = 0; i < n; ++i) {
        bool due;
        {
            std::lock_guard lock(mutex_);
            const Server& s = *servers_[i];
            if (s.state == ServerState::Down) {
                due = now >= s.next_probe;
            } else {
                Deadline refresh = s.shared->refresh_at();
                due = refresh != Deadline::min() && now >= refresh;
            }
        }
        if (due) {
            probe(i);
            done[i] = true;
        }
    }
    if (now < next_health_round_) return false;
    for (std::size_t i = 0; i < n; ++i) {
        bool down;
        {
            std::lock_guard lock(mutex_);
            down = servers_[i]->state == ServerState::Down;
        }
        if (!done[i] && !down) probe(i);
    }
    {
        std::lock_guard lock(mutex_);
        last_health_check_ = static_cast<std::int64_t>(std::time(nullptr));
    }
    next_health_round_ = now + settings_.health_interval;
    if (settings_.self_test.enabled) {
        // A server that missed plain EICAR is tested again each round, so a
        // fixed scanner gets mail back without a reload (its ISTag may not change).
        std::lock_guard lock(mutex_);
        for (auto& sp : servers_)
            if (sp->test && !sp->test->eicar) sp->full_due = true;
        test_due_.notify_all();
    }
    publish();
    return true;
}

// signatures - ISTags of servers not down, probing those without one.
std::vector<std::string> ServerPool::signatures() {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < servers_.size(); ++i) {
        bool ask;
        {
            std::lock_guard lock(mutex_);
            const Server& s = *servers_[i];
            ask = s.state != ServerState::Down && s.istag.empty();
        }
        if (ask) probe(i);
        std::lock_guard lock(mutex_);
        const Server& s = *servers_[i];
        if (s.state != ServerState::Down && !s.istag.empty()) out.push_back(s.istag);
    }
    return out;
}

// note_signature - remember and log a definition change.
void ServerPool::note_signature(std::size_t server, const std::string& istag, const std::string& version) {
    if (istag.empty()) return;
    {
        std::lock_guard lock(mutex_);
        Server& s = *servers_[server];
        if (!version.empty()) s.version = version;
        if (s.istag == istag) return;
        const std::string old = s.istag;
        s.istag = istag;
        s.istag_since = static_cast<std::int64_t>(std::time(nullptr));
        if (!old.empty() && old != istag && settings_.self_test.enabled) {
            s.small_due = true; // new definitions: prove the scanner still scans
            test_due_.notify_all();
        }
        if (!old.empty() && old != istag) {
            spdlog::info("scanner {}: virus definitions updated: server={} old=\"{}\" new=\"{}\" version=\"{}\"", s.name,
                         s.name, sanitize_value(old, 200), sanitize_value(istag, 200), sanitize_value(s.version, 200));
            last_signature_update_ = static_cast<std::int64_t>(std::time(nullptr));
        } else if (old.empty()) {
            spdlog::info("scanner {}: virus definition signature: server={} istag=\"{}\" version=\"{}\"", s.name,
                         s.name, sanitize_value(istag, 200), sanitize_value(s.version, 200));
        }
        last_signature_ = istag;
        last_signature_info_ = s.version;
    }
    publish();
}

// health_of - Pending (no contact, or self-test not done) / Error (down,
// or missed plain EICAR) / Warnings (certificate, canaries missed) / validated.
Health ServerPool::health_of(const Server& s) const {
    switch (s.state) {
    case ServerState::Pending: return Health::Pending;
    case ServerState::Down: return Health::Error;
    case ServerState::Up:
        if (settings_.self_test.enabled) {
            if (!s.test) return Health::Pending;
            if (!s.test->eicar) return Health::Error;
            if (!s.test->misses().empty()) return Health::Warnings;
        }
        return s.tls_warning.empty() ? Health::Validated : Health::Warnings;
    }
    return Health::Error;
}

// status - snapshot of every server.
std::vector<ServerStatus> ServerPool::status() const {
    std::lock_guard lock(mutex_);
    std::vector<ServerStatus> out;
    for (const auto& sp : servers_) {
        const Server& s = *sp;
        ServerStatus st;
        st.name = s.name;
        st.health = health_of(s);
        st.down = s.state == ServerState::Down;
        st.outstanding = s.outstanding;
        st.open = s.open;
        st.cap = s.cap(settings_.default_cap);
        st.failures = s.failures;
        st.requests = s.requests;
        st.istag = s.istag;
        st.version_info = s.version;
        st.last_error = s.last_error;
        st.tls_warning = s.tls_warning;
        st.last_check = s.last_check;
        st.last_definition_update = s.istag_since;
        st.last_latency_ms = s.last_latency_ms;
        st.avg_latency_ms = s.avg_latency_ms;
        if (!settings_.self_test.enabled) {
            st.self_test = "off";
            st.trusted_size = UINT64_MAX;
        } else if (!s.test) {
            st.self_test = s.attempt_failed ? "not done (" + s.test_error + ")" : "pending";
            st.gets_mail = false;
        } else {
            st.self_test = s.test->summary();
            st.gets_mail = s.test->eicar;
            st.trusted_size = s.test->trusted_size;
            st.misses = s.test->misses();
            st.fix = cicap_fix(*s.test);
            st.canaries = s.test->canaries;
        }
        out.push_back(std::move(st));
    }
    return out;
}

// overall - Error when no server can take mail but some is down or
// failed its self-test; Warnings when something is down, failed or
// warned (certificate, canaries missed); Pending before any result.
Health ServerPool::overall() const {
    std::lock_guard lock(mutex_);
    std::size_t usable = 0, failed = 0, warned = 0;
    const bool testing = settings_.self_test.enabled;
    for (const auto& sp : servers_) {
        const Server& s = *sp;
        const bool up = s.state == ServerState::Up;
        if (s.state == ServerState::Down || (up && testing && s.test && !s.test->eicar)) {
            ++failed;
        } else if (up && (!testing || s.test)) {
            ++usable;
            if (!s.tls_warning.empty() || (testing && !s.test->misses().empty())) ++warned;
        }
    }
    if (servers_.empty() || (usable == 0 && failed > 0)) return Health::Error;
    if (usable == 0) return Health::Pending;
    if (failed > 0 || warned > 0) return Health::Warnings;
    return Health::Validated;
}

// self_test_result - a copy of a server's last result.
std::optional<SelfTestResult> ServerPool::self_test_result(std::size_t server) const {
    std::lock_guard lock(mutex_);
    return servers_[server]->test;
}

// record_self_test - store a result (or a failed attempt), log it, wake waiters.
void ServerPool::record_self_test(std::size_t server, SelfTestResult r, bool full) {
    Server& s = *servers_[server];
    const bool complete = r.complete;
    std::string istag = r.istag;
    {
        std::lock_guard lock(mutex_);
        if (!complete) {
            // Soon again (mail is waiting for it), backing off to the probe interval.
            const auto again = std::min<std::chrono::milliseconds>(
                settings_.probe_interval, std::chrono::milliseconds(500 << std::min(s.test_failures, 6u)));
            ++s.test_failures;
            s.attempt_failed = true;
            s.test_error = r.error;
            s.next_test = SteadyClock::now() + again;
            (full ? s.full_due : s.small_due) = true;
            spdlog::warn("scanner {} self-test not done: server={} error=\"{}\" retry_ms={}{}", s.name, s.name,
                         sanitize_value(r.error, 300), again.count(),
                         s.test ? "" : " (it gets no mail until a test is done)");
        } else {
            s.test_failures = 0;
            if (!full && s.test) keep_large(r, *s.test);
            const bool changed = !s.test || s.test->summary() != r.summary();
            s.attempt_failed = false;
            s.test_error.clear();
            if (!r.eicar) {
                spdlog::error("scanner {} did not detect the EICAR test file: it gets no mail until it does "
                              "(self-test) reply=\"{}\" fix=\"{}\"",
                              s.name, r.canaries.empty() ? "" : r.canaries.front().detail, cicap_fix(r));
            } else if (!r.misses().empty()) {
                if (changed || full)
                    spdlog::warn("scanner {} self-test: misses {}; such parts go to a scanner trusted with them, "
                                 "else they are unscannable; trusted_size={} fix=\"{}\" ms={}",
                                 s.name, fmt::join(r.misses(), ", "), r.trusted_size, cicap_fix(r), r.ms);
            } else {
                spdlog::info("scanner {} self-test passed: eicar, zip, pdf{} flagged; trusted_size={} ms={}", s.name,
                             r.large_run ? fmt::format(" and a {}-byte object", r.large_flagged) : "",
                             r.trusted_size, r.ms);
            }
            s.test = std::move(r);
            ++counters().self_tests;
        }
    }
    if (complete)
        report_success(server, {});
    else if (!stopping_)
        report_failure(server, "self-test: " + r.error); // the breaker counts it like any exchange
    if (complete && !istag.empty()) note_signature(server, istag, {});
    publish(); // before waking waiters: what they see next is already in the statistics
    slot_free_.notify_all();
}

// test_loop - run this server's self-test whenever one is due.
void ServerPool::test_loop(std::size_t server) {
    Server& s = *servers_[server];
    std::unique_ptr<IcapSession> session;
    std::unique_lock lock(mutex_);
    while (!stopping_) {
        const Deadline now = SteadyClock::now();
        const bool due = (s.full_due || s.small_due) && s.state != ServerState::Down && now >= s.next_test;
        if (!due) {
            test_due_.wait_for(lock, std::chrono::milliseconds(250));
            continue;
        }
        const bool full = s.full_due || !s.test;
        s.full_due = s.small_due = false;
        lock.unlock();
        if (!session) session = s.make_session(tls_, timeouts_);
        SelfTestResult r = run_self_test(*session, settings_.self_test, full, &stopping_);
        if (!r.complete) session->close();
        if (!stopping_) record_self_test(server, std::move(r), full);
        lock.lock();
    }
}

// publish - the counters' health view.
void ServerPool::publish() {
    // One publisher at a time, so an older snapshot never lands after a newer one.
    std::lock_guard publishing(publish_mutex_);
    ScannerHealth h;
    h.status = to_string(overall());
    {
        std::lock_guard lock(mutex_);
        h.last_health_check = last_health_check_;
        h.last_signature = last_signature_;
        h.last_signature_info = last_signature_info_;
        h.last_signature_update = last_signature_update_;
        if (settings_.self_test.enabled) {
            h.self_test.clear();
            for (const auto& sp : servers_) {
                const Server& s = *sp;
                const std::string what = s.test ? s.test->summary()
                                                : s.attempt_failed ? "not done (" + s.test_error + ")" : "pending";
                h.self_test += (h.self_test.empty() ? "" : " | ") + s.name + ": " + what;
            }
        }
    }
    counters().set_scanner_health(h);
}

} // namespace icapm
