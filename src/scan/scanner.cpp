// NAME
//   scanner.cpp - job queue, worker threads and per-message batches
// SUMMARY
//   A message's items become jobs that share one Batch and one deadline
//   (MessageScanTimeout). Workers take jobs, scan them on a session lent
//   by the ServerPool (a failed exchange is retried up to ScanRetries
//   times on new connections, with a backoff, another server first), and
//   fill the batch; the message's thread waits on the batch. A batch
//   abandoned at its deadline is kept alive by the jobs that still point
//   at it, so late results land harmlessly, and a job still queued then is
//   dropped unscanned by the worker that takes it. A health thread runs the
//   pool's probes and health rounds. When no server is up, scan() answers
//   Error at once.
// DIAGNOSTICS
//   Server failures and retries are logged at warning level with the job
//   id; they become Error verdicts, which policy turns into OnFail. A full
//   queue and a passed deadline are warnings with counters (QueueFull,
//   MessageScanTimeouts); each retry counts in ScanRetries.
#include "icap-milter/scan/scanner.hpp"

#include "icap-milter/net/tls.hpp"
#include "icap-milter/net/uri.hpp"
#include "icap-milter/scan/job_queue.hpp"
#include "icap-milter/scan/pool.hpp"
#include "icap-milter/scan/session.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap-milter/stats/observer.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace icapm {

namespace {

// Batch - the verdicts of one message, filled in by workers.
struct Batch {
    std::mutex mutex;
    std::condition_variable done;
    std::size_t remaining = 0;
    std::vector<Verdict> results;
    std::vector<bool> filled; // results[i] came from a worker

    // complete - store one verdict and wake the waiter when all are in.
    void complete(std::size_t index, Verdict v) {
        std::lock_guard lock(mutex);
        results[index] = std::move(v);
        filled[index] = true;
        if (--remaining == 0) done.notify_all();
    }
};

// Job - one item of one batch.
struct Job {
    ScanTask task;
    std::shared_ptr<Batch> batch;
    std::size_t index = 0;
    Deadline deadline{};
};

// How often the health thread looks for due probes.
constexpr std::chrono::milliseconds kHealthTick{250};
// Backoff before the first retry of a part; doubled for each further one.
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{2000};

// error_verdict - an Error verdict with a reason.
Verdict error_verdict(std::string reason) {
    Verdict v;
    v.kind = VerdictKind::Error;
    v.reason = std::move(reason);
    return v;
}

// unscannable_verdict - an Unscannable verdict with a reason.
Verdict unscannable_verdict(std::string reason) {
    Verdict v;
    v.kind = VerdictKind::Unscannable;
    v.reason = std::move(reason);
    return v;
}

// backoff - the wait before retry number n (1-based).
std::chrono::milliseconds backoff(unsigned n) {
    auto d = kFirstBackoff * (1u << std::min(n - 1, 5u));
    return std::min<std::chrono::milliseconds>(d, kMaxBackoff);
}

} // namespace

struct Scanner::Impl {
    std::shared_ptr<const Config> config;
    std::unique_ptr<ServerPool> pool;
    JobQueue<Job> queue;
    std::vector<std::thread> workers;
    std::thread health;
    std::mutex stop_mutex;
    std::condition_variable stop_cv;
    bool stopping = false;
    std::atomic<bool> cancel{false}; // set when the Scanner goes: exchanges in flight give up

    explicit Impl(std::shared_ptr<const Config> c)
        : config(std::move(c)), queue(config->max_queue_length) {}

    // work - one worker's loop: take a job, scan it on a lent session.
    void work() {
        while (auto job = queue.pop()) {
            Verdict v;
            try {
                if (SteadyClock::now() >= job->deadline)
                    v = error_verdict("timed out waiting in the scan queue (MessageScanTimeout)");
                else
                    v = scan_one(job->task, job->deadline);
            } catch (const std::exception& e) {
                v = error_verdict(std::string("internal error: ") + e.what());
                spdlog::error("{}: {}", job->task.job_id, v.reason);
            }
            if (job->task.pending) --*job->task.pending;
            job->batch->complete(job->index, std::move(v));
        }
    }

    // pause - sleep d before a retry unless stopping; false when the
    // message deadline would pass first (no time left for another try).
    bool pause(std::chrono::milliseconds d, Deadline deadline) {
        if (SteadyClock::now() + d >= deadline) return false;
        std::unique_lock lock(stop_mutex);
        stop_cv.wait_for(lock, d, [&] { return stopping; });
        return !stopping;
    }

    // scan_one - the best trusted server first. A failed exchange is
    // tried again up to ScanRetries times, each on a newly opened
    // connection after a backoff, on a server not yet tried when there is
    // one, else on any that is still up, while the message deadline
    // allows. A server never reached (refused, TLS handshake) does not use
    // up a retry; it counts towards the circuit breaker.
    Verdict scan_one(const ScanTask& task, Deadline deadline) {
        const PartInfo part{task.data->size(), task.kind};
        const unsigned max_failures = 1 + config->scan_retries;
        const std::size_t max_unreached = pool->size() * 2;
        std::vector<bool> tried(pool->size(), false);
        std::optional<Verdict> last;
        unsigned failures = 0;
        std::size_t unreached = 0;
        while (failures < max_failures && unreached <= max_unreached) {
            if (failures > 0 && !pause(backoff(failures), deadline)) break;
            NoServer kind = NoServer::NoneUp;
            std::string why;
            auto take = [&]() -> std::optional<ServerPool::Lease> {
                auto first = pool->acquire(tried, part, deadline, &kind, &why);
                if (first || kind != NoServer::NoOtherToTry) return first;
                // Every live server has had its go: again on any of them.
                std::fill(tried.begin(), tried.end(), false);
                return pool->acquire(tried, part, deadline, &kind, &why);
            };
            auto lease = take();
            if (!lease) {
                if (kind == NoServer::NotTrusted) return unscannable_verdict(why);
                if (!last) last = error_verdict(why);
                break;
            }
            const std::size_t s = lease->server();
            tried[s] = true;
            if (failures > 0) {
                lease->session().close(); // a retry always goes out on a new connection
                ++counters().scan_retries;
            }
            auto source = task.data->reader();
            ScanRequest req{task.filename, task.job_id, deadline, &cancel};
            const PartTimer timer; // metrics: this exchange's time (no clock read when off)
            const auto started = SteadyClock::now();
            Verdict v = lease->session().scan(req, *source);
            if (v.kind != VerdictKind::Error) {
                timer.done(v);
                pool->report_success(s, v.istag,
                                     std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started));
                return v;
            }
            const bool reached = !lease->session().connect_failed();
            pool->report_failure(s, v.reason);
            if (reached)
                ++failures;
            else
                ++unreached;
            const bool again = failures < max_failures && SteadyClock::now() < deadline;
            spdlog::warn("{}: scanner {} failed: {}{}", task.job_id, v.server, v.reason,
                         again ? fmt::format("; trying again on a new connection ({} of {} retries used)",
                                             failures, config->scan_retries)
                               : std::string());
            last = std::move(v);
        }
        if (last && failures > 0 && SteadyClock::now() >= deadline)
            last->reason += " (MessageScanTimeout reached)";
        return last ? std::move(*last) : error_verdict("no scanner is up");
    }

// health_loop - probes, OPTIONS refreshes and health rounds until stop.
    void health_loop() {
        std::unique_lock lock(stop_mutex);
        while (!stopping) {
            lock.unlock();
            try {
                pool->maintain(SteadyClock::now());
            } catch (const std::exception& e) {
                spdlog::error("scanner health check: {}", e.what());
            }
            lock.lock();
            stop_cv.wait_for(lock, kHealthTick, [&] { return stopping; });
        }
    }
};


// make_scanner_tls - one TLS context from the Tls* keys, if any server needs it.
std::shared_ptr<const TlsContext> make_scanner_tls(const Config& c, const TlsFiles* files) {
    return make_scanner_tls(c, parse_server_specs(c.icap_servers), files);
}

// make_scanner_tls - the same for server lines already parsed.
std::shared_ptr<const TlsContext> make_scanner_tls(const Config& c, const std::vector<ServerSpec>& specs,
                                                   const TlsFiles* files) {
    if (std::none_of(specs.begin(), specs.end(), [](const ServerSpec& s) { return s.uri.tls; })) return nullptr;
    TlsSettings t;
    t.ca_file = c.tls_ca_file;
    t.ca_path = c.tls_ca_path;
    t.verify = c.tls_verify;
    t.min_version = c.tls_min_version;
    t.client_cert = c.tls_cert_file;
    t.client_key = c.tls_key_file;
    t.ciphers = c.tls_ciphers;
    t.verify_hostname = c.tls_verify_hostname;
    t.accept_expired = c.tls_accept_expired;
    return std::make_shared<const TlsContext>(t, files);
}

// Scanner - parse the server list, make the TLS context, start threads.
Scanner::Scanner(std::shared_ptr<const Config> config, std::shared_ptr<const TlsFiles> tls_files)
    : impl_(std::make_unique<Impl>(std::move(config))) {
    const Config& c = *impl_->config;
    std::vector<ServerSpec> specs = parse_server_specs(c.icap_servers);
    if (specs.empty()) throw std::runtime_error("no IcapServer configured");
    std::shared_ptr<const TlsContext> tls = make_scanner_tls(c, specs, tls_files.get());
    Timeouts timeouts;
    timeouts.connect = c.connect_timeout;
    timeouts.io = c.io_timeout;
    timeouts.total = c.scan_timeout;
    PoolSettings ps;
    ps.default_cap = c.scan_threads;
    ps.failures_to_down = c.circuit_breaker_failures;
    ps.probe_interval = c.circuit_breaker_probe_interval;
    ps.health_interval = c.health_check_interval;
    ps.expiry_warning_days = c.tls_expiry_warning_days;
    ps.self_test = self_test_settings(c.scanner_self_test, c.max_scan_size);
    impl_->pool = std::make_unique<ServerPool>(std::move(specs), std::move(tls), timeouts, ps);
    for (unsigned i = 0; i < c.scan_threads; ++i) impl_->workers.emplace_back([this] { impl_->work(); });
    impl_->health = std::thread([this] { impl_->health_loop(); });
}

// ~Scanner - stop the health thread, drain the queue, join every worker.
Scanner::~Scanner() {
    {
        std::lock_guard lock(impl_->stop_mutex);
        impl_->stopping = true;
    }
    impl_->stop_cv.notify_all();
    if (impl_->health.joinable()) impl_->health.join();
    impl_->cancel = true;
    impl_->queue.close();
    for (auto& t : impl_->workers) t.join();
}

// signatures - ISTags of servers that are up, asking OPTIONS where unknown.
std::vector<std::string> Scanner::signatures() { return impl_->pool->signatures(); }

// cached_signatures - ISTags the pool already knows, of usable servers.
std::vector<std::string> Scanner::cached_signatures() const {
    std::vector<std::string> out;
    for (const ServerStatus& s : impl_->pool->status())
        if (!s.down && s.health != Health::Error && !s.istag.empty()) out.push_back(s.istag);
    return out;
}

// health - the pool's overall health.
Health Scanner::health() const { return impl_->pool->overall(); }

// servers - per-server snapshots.
std::vector<ServerStatus> Scanner::servers() const { return impl_->pool->status(); }

// queued - current queue length.
std::size_t Scanner::queued() const { return impl_->queue.size(); }

// scan - fan the tasks out and wait for all of them, at most until the
// message's deadline (MessageScanTimeout).
std::vector<Verdict> Scanner::scan(std::vector<ScanTask> tasks, const std::function<void()>& progress,
                                   std::chrono::milliseconds progress_interval) {
    const std::size_t n = tasks.size();
    if (n == 0) return {};
    const std::string first_job = tasks.front().job_id; // "QUEUEID: Job-N.1", for the log
    if (!impl_->pool->any_up()) {
        // The circuit breaker is open everywhere: answer now, not after a timeout.
        spdlog::warn("{}: no scanner is up; items={} not scanned", first_job, n);
        return std::vector<Verdict>(n, error_verdict("no scanner is up"));
    }
    auto batch = std::make_shared<Batch>();
    batch->results.resize(n, error_verdict("not scanned"));
    batch->filled.resize(n, false);
    batch->remaining = n;

    const Config& c = *impl_->config;
    const auto timeout_s = std::chrono::duration_cast<std::chrono::seconds>(c.message_scan_timeout).count();
    const Deadline deadline = SteadyClock::now() + c.message_scan_timeout;

    bool warned_full = false;
    for (std::size_t i = 0; i < n; ++i) {
        Job job{std::move(tasks[i]), batch, i, deadline};
        bool queued = false;
        while (true) {
            const auto slice = std::min<Deadline>(deadline, SteadyClock::now() + progress_interval);
            queued = impl_->queue.push(std::move(job), slice); // job stays ours when this fails
            if (queued || SteadyClock::now() >= deadline) break;
            if (!warned_full) {
                warned_full = true;
                ++counters().queue_full;
                spdlog::warn("{}: scan queue full: waiting={} MaxQueueLength={} ScanThreads={} "
                             "wait_up_to_s={} (MessageScanTimeout)",
                             first_job, impl_->queue.size(), c.max_queue_length, c.scan_threads, timeout_s);
            }
            progress();
        }
        if (!queued) {
            ++counters().scan_deadline;
            spdlog::warn("{}: scan queue stayed full until MessageScanTimeout: timeout_s={} not_queued={}",
                         first_job, timeout_s, n - i);
            std::lock_guard lock(batch->mutex);
            for (std::size_t j = i; j < n; ++j) {
                batch->results[j] = error_verdict("scan queue full until MessageScanTimeout");
                batch->filled[j] = true;
            }
            batch->remaining -= (n - i);
            break;
        }
    }

    std::unique_lock lock(batch->mutex);
    while (batch->remaining > 0) {
        const auto slice = std::min<Deadline>(deadline, SteadyClock::now() + progress_interval);
        if (batch->done.wait_until(lock, slice, [&] { return batch->remaining == 0; })) break;
        if (SteadyClock::now() >= deadline) {
            ++counters().scan_deadline;
            spdlog::warn("{}: MessageScanTimeout passed: timeout_s={} outstanding={}", first_job,
                         timeout_s, batch->remaining);
            for (std::size_t j = 0; j < n; ++j)
                if (!batch->filled[j]) batch->results[j] = error_verdict("timed out (MessageScanTimeout)");
            return batch->results;
        }
        lock.unlock();
        progress();
        lock.lock();
    }
    return batch->results;
}

} // namespace icapm
