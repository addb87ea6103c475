// NAME
//   scanner.cpp - job queue, worker threads and per-message batches
// SUMMARY
//   A message's items become jobs that share one Batch. Workers take
//   jobs, scan them on a session lent by the ServerPool (and once more on
//   another server when one fails), and fill the batch; the message's thread
//   waits on the batch. A batch abandoned after its deadline is kept
//   alive by the jobs that still point at it, so late results land
//   harmlessly. A health thread runs the pool's probes and health rounds.
//   When no server is up, scan() answers Error at once.
// DIAGNOSTICS
//   Server failures are logged at warning level with the job id; they
//   become Error verdicts, which policy turns into OnFail.
#include "icap-milter/scan/scanner.hpp"

#include "icap-milter/net/tls.hpp"
#include "icap-milter/net/uri.hpp"
#include "icap-milter/scan/job_queue.hpp"
#include "icap-milter/scan/pool.hpp"
#include "icap-milter/scan/session.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
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

    // complete - store one verdict and wake the waiter when all are in.
    void complete(std::size_t index, Verdict v) {
        std::lock_guard lock(mutex);
        results[index] = std::move(v);
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

// An item goes to at most two scanners that were reached: the first,
// and one other after a failure; then it gets OnFail.
constexpr unsigned kMaxAttempts = 2;
// How often the health thread looks for due probes.
constexpr std::chrono::milliseconds kHealthTick{250};

// error_verdict - an Error verdict with a reason.
Verdict error_verdict(std::string reason) {
    Verdict v;
    v.kind = VerdictKind::Error;
    v.reason = std::move(reason);
    return v;
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

    explicit Impl(std::shared_ptr<const Config> c)
        : config(std::move(c)), queue(config->max_queue_length) {}

    // work - one worker's loop: take a job, scan it on a lent session.
    void work() {
        while (auto job = queue.pop()) {
            Verdict v;
            try {
                if (SteadyClock::now() >= job->deadline)
                    v = error_verdict("timed out waiting in the scan queue");
                else
                    v = scan_one(job->task, job->deadline);
            } catch (const std::exception& e) {
                v = error_verdict(std::string("internal error: ") + e.what());
                spdlog::error("{}: {}", job->task.job_id, v.reason);
            }
            job->batch->complete(job->index, std::move(v));
        }
    }

    // scan_one - the best server first; after a failure once more on
    // another server, or, when every server has been tried, once more on a
    // fresh connection to one that is still up (a server never reached
    // does not use up the retry).
    Verdict scan_one(const ScanTask& task, Deadline deadline) {
        std::vector<bool> tried(pool->size(), false);
        Verdict last = error_verdict("no scanner is up");
        unsigned attempts = 0;
        bool tried_again = false;
        while (attempts < kMaxAttempts) {
            std::string why;
            auto take = [&]() -> std::optional<ServerPool::Lease> {
                auto first = pool->acquire(tried, deadline, &why);
                if (first || attempts == 0 || tried_again) return first;
                tried_again = true;
                std::fill(tried.begin(), tried.end(), false);
                return pool->acquire(tried, deadline, &why);
            };
            auto lease = take();
            if (!lease) {
                if (attempts == 0 && last.reason == "no scanner is up") last = error_verdict(why);
                break;
            }
            const std::size_t s = lease->server();
            tried[s] = true;
            auto source = task.data->reader();
            ScanRequest req{task.filename, task.job_id};
            last = lease->session().scan(req, *source);
            if (last.kind != VerdictKind::Error) {
                pool->report_success(s, last.istag);
                return last;
            }
            const bool reached = !lease->session().connect_failed();
            pool->report_failure(s, last.reason);
            if (reached) ++attempts;
            spdlog::warn("{}: scanner {} failed: {}{}", task.job_id, last.server, last.reason,
                         attempts < kMaxAttempts ? "; trying again" : "");
        }
        return last;
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
std::shared_ptr<const TlsContext> make_scanner_tls(const Config& c) {
    return make_scanner_tls(c, parse_server_specs(c.icap_servers));
}

// make_scanner_tls - the same for server lines already parsed.
std::shared_ptr<const TlsContext> make_scanner_tls(const Config& c, const std::vector<ServerSpec>& specs) {
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
    return std::make_shared<const TlsContext>(t);
}

// Scanner - parse the server list, make the TLS context, start threads.
Scanner::Scanner(std::shared_ptr<const Config> config) : impl_(std::make_unique<Impl>(std::move(config))) {
    const Config& c = *impl_->config;
    std::vector<ServerSpec> specs = parse_server_specs(c.icap_servers);
    if (specs.empty()) throw std::runtime_error("no IcapServer configured");
    std::shared_ptr<const TlsContext> tls = make_scanner_tls(c, specs);
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
    impl_->queue.close();
    for (auto& t : impl_->workers) t.join();
}

// signatures - ISTags of servers that are up, asking OPTIONS where unknown.
std::vector<std::string> Scanner::signatures() { return impl_->pool->signatures(); }

// health - the pool's overall health.
Health Scanner::health() const { return impl_->pool->overall(); }

// servers - per-server snapshots.
std::vector<ServerStatus> Scanner::servers() const { return impl_->pool->status(); }

// queued - current queue length.
std::size_t Scanner::queued() const { return impl_->queue.size(); }

// scan - fan the tasks out and wait for all of them.
std::vector<Verdict> Scanner::scan(std::vector<ScanTask> tasks, const std::function<void()>& progress,
                                   std::chrono::milliseconds progress_interval) {
    const std::size_t n = tasks.size();
    if (n == 0) return {};
    const std::string first_job = tasks.front().job_id; // "QUEUEID: Job-N.1", for the log
    if (!impl_->pool->any_up()) {
        // The circuit breaker is open everywhere: answer now, not after a timeout.
        spdlog::warn("{}: no scanner is up; {} item(s) not scanned", first_job, n);
        return std::vector<Verdict>(n, error_verdict("no scanner is up"));
    }
    auto batch = std::make_shared<Batch>();
    batch->results.resize(n, error_verdict("not scanned"));
    batch->remaining = n;

    // An item may need every server once, each bounded by ScanTimeout;
    // past that something is stuck and OnFail is the answer.
    const auto& c = *impl_->config;
    using Clock = std::chrono::steady_clock;
    const auto servers = static_cast<long>(std::min<std::size_t>(impl_->pool->size(), kMaxAttempts));
    const auto rounds = static_cast<long>(n / c.scan_threads + 2);
    const Clock::duration per_item = (c.scan_timeout + c.connect_timeout) * servers;
    const Clock::time_point deadline = Clock::now() + per_item * rounds;

    for (std::size_t i = 0; i < n; ++i) {
        Job job{std::move(tasks[i]), batch, i, deadline};
        bool queued = false;
        while (!queued) {
            const auto slice = std::min<Clock::time_point>(deadline, Clock::now() + progress_interval);
            queued = impl_->queue.push(std::move(job), slice);
            if (queued) break;
            if (std::chrono::steady_clock::now() >= deadline) break;
            progress();
        }
        if (!queued) {
            spdlog::warn("{}: scan queue full or closed; {} item(s) not queued", first_job, n - i);
            std::lock_guard lock(batch->mutex);
            for (std::size_t j = i; j < n; ++j) batch->results[j] = error_verdict("scan queue full");
            batch->remaining -= (n - i);
            break;
        }
    }

    std::unique_lock lock(batch->mutex);
    while (batch->remaining > 0) {
        const auto slice = std::min<Clock::time_point>(deadline, Clock::now() + progress_interval);
        if (batch->done.wait_until(lock, slice, [&] { return batch->remaining == 0; })) break;
        if (std::chrono::steady_clock::now() >= deadline) {
            spdlog::warn("{}: scan deadline passed with {} item(s) outstanding", first_job, batch->remaining);
            for (auto& v : batch->results)
                if (v.kind == VerdictKind::Error && v.reason == "not scanned") v.reason = "timed out waiting for scanner";
            return batch->results;
        }
        lock.unlock();
        progress();
        lock.lock();
    }
    return batch->results;
}

} // namespace icapm
