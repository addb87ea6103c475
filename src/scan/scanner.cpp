// NAME
//   scanner.cpp - job queue, worker threads and per-message batches
// SUMMARY
//   A message's items become jobs that share one Batch. Workers take
//   jobs, scan them on their own persistent sessions (trying the next
//   server when one fails), and fill the batch; the message's thread
//   waits on the batch. A batch abandoned after its deadline is kept
//   alive by the jobs that still point at it, so late results land
//   harmlessly.
// DIAGNOSTICS
//   Server failures are logged at warning level with the job id; they
//   become Error verdicts, which policy turns into OnFail.
#include "icap-milter/scan/scanner.hpp"

#include "icap-milter/net/tls.hpp"
#include "icap-milter/net/uri.hpp"
#include "icap-milter/scan/job_queue.hpp"
#include "icap-milter/scan/session.hpp"

#include <spdlog/spdlog.h>

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
};

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
    std::vector<IcapUri> servers;
    std::shared_ptr<const TlsContext> tls;
    Timeouts timeouts;
    JobQueue<Job> queue;
    std::vector<std::thread> workers;

    // Per-server ISTag as last seen (OPTIONS or a verdict), "" = unknown.
    std::mutex signature_mutex;
    std::vector<std::string> istags;
    std::vector<std::unique_ptr<IcapSession>> probes; // OPTIONS-only sessions, under signature_mutex

    explicit Impl(std::shared_ptr<const Config> c)
        : config(std::move(c)), queue(config->max_queue_length) {}

    // note_istag - remember what a server last said its signature was.
    void note_istag(std::size_t server, const std::string& istag) {
        if (istag.empty()) return;
        std::lock_guard lock(signature_mutex);
        istags[server] = istag;
    }

    // work - one worker's loop: sessions live as long as the thread.
    void work(std::size_t worker_index) {
        std::vector<std::unique_ptr<IcapSession>> sessions(servers.size());
        while (auto job = queue.pop()) {
            Verdict v;
            try {
                v = scan_one(worker_index, sessions, job->task);
            } catch (const std::exception& e) {
                v = error_verdict(std::string("internal error: ") + e.what());
                spdlog::error("{}: {}", job->task.job_id, v.reason);
            }
            job->batch->complete(job->index, std::move(v));
        }
    }

    // scan_one - try servers in turn (starting at this worker's own) until one answers.
    Verdict scan_one(std::size_t worker_index, std::vector<std::unique_ptr<IcapSession>>& sessions,
                     const ScanTask& task) {
        Verdict last = error_verdict("no scanner configured");
        for (std::size_t attempt = 0; attempt < servers.size(); ++attempt) {
            const std::size_t s = (worker_index + attempt) % servers.size();
            if (!sessions[s])
                sessions[s] = std::make_unique<IcapSession>(servers[s], tls, timeouts);
            auto source = task.data->reader();
            ScanRequest req{task.filename, task.job_id};
            last = sessions[s]->scan(req, *source);
            if (last.kind != VerdictKind::Error) {
                note_istag(s, last.istag);
                return last;
            }
            spdlog::warn("{}: scanner {} failed: {}", task.job_id, servers[s].str(), last.reason);
        }
        return last;
    }
};

// Scanner - parse the server list, make the TLS context, start workers.
Scanner::Scanner(std::shared_ptr<const Config> config) : impl_(std::make_unique<Impl>(std::move(config))) {
    const Config& c = *impl_->config;
    bool any_tls = false;
    for (const auto& text : c.icap_servers) {
        std::string error;
        auto uri = parse_icap_uri(text, &error);
        if (!uri) throw std::runtime_error("IcapServer " + text + ": " + error);
        any_tls = any_tls || uri->tls;
        impl_->servers.push_back(*uri);
    }
    if (impl_->servers.empty()) throw std::runtime_error("no IcapServer configured");
    if (any_tls) {
        TlsSettings t;
        t.ca_file = c.tls_ca_file;
        t.ca_path = c.tls_ca_path;
        t.verify = c.tls_verify;
        t.min_version = c.tls_min_version;
        impl_->tls = std::make_shared<const TlsContext>(t);
    }
    impl_->istags.resize(impl_->servers.size());
    impl_->probes.resize(impl_->servers.size());
    impl_->timeouts.connect = c.connect_timeout;
    impl_->timeouts.io = c.io_timeout;
    impl_->timeouts.total = c.scan_timeout;
    for (unsigned i = 0; i < c.scan_threads; ++i)
        impl_->workers.emplace_back([this, i] { impl_->work(i); });
}

// ~Scanner - drain the queue and join every worker.
Scanner::~Scanner() {
    impl_->queue.close();
    for (auto& t : impl_->workers) t.join();
}

// signatures - known ISTags, asking OPTIONS of servers with none yet.
std::vector<std::string> Scanner::signatures() {
    std::lock_guard lock(impl_->signature_mutex);
    std::vector<std::string> out;
    for (std::size_t s = 0; s < impl_->servers.size(); ++s) {
        if (impl_->istags[s].empty()) {
            if (!impl_->probes[s])
                impl_->probes[s] = std::make_unique<IcapSession>(impl_->servers[s], impl_->tls, impl_->timeouts);
            std::string error;
            if (auto opts = impl_->probes[s]->options(&error))
                impl_->istags[s] = opts->istag;
            else
                spdlog::warn("scanner {}: OPTIONS failed: {}", impl_->servers[s].str(), error);
        }
        if (!impl_->istags[s].empty()) out.push_back(impl_->istags[s]);
    }
    return out;
}

// queued - current queue length.
std::size_t Scanner::queued() const { return impl_->queue.size(); }

// scan - fan the tasks out and wait for all of them.
std::vector<Verdict> Scanner::scan(std::vector<ScanTask> tasks, const std::function<void()>& progress,
                                   std::chrono::milliseconds progress_interval) {
    const std::size_t n = tasks.size();
    if (n == 0) return {};
    auto batch = std::make_shared<Batch>();
    batch->results.resize(n, error_verdict("not scanned"));
    batch->remaining = n;

    // An item may need every server once, each bounded by ScanTimeout;
    // past that something is stuck and OnFail is the answer.
    const auto& c = *impl_->config;
    using Clock = std::chrono::steady_clock;
    const auto servers = static_cast<long>(impl_->servers.size());
    const auto rounds = static_cast<long>(n / c.scan_threads + 2);
    const Clock::duration per_item = (c.scan_timeout + c.connect_timeout) * servers;
    const Clock::time_point deadline = Clock::now() + per_item * rounds;

    for (std::size_t i = 0; i < n; ++i) {
        Job job{std::move(tasks[i]), batch, i};
        bool queued = false;
        while (!queued) {
            const auto slice = std::min<Clock::time_point>(deadline, Clock::now() + progress_interval);
            queued = impl_->queue.push(std::move(job), slice);
            if (queued) break;
            if (std::chrono::steady_clock::now() >= deadline) break;
            progress();
        }
        if (!queued) {
            spdlog::warn("scan queue full or closed; {} item(s) not queued", n - i);
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
            spdlog::warn("scan deadline passed with {} item(s) outstanding", batch->remaining);
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
