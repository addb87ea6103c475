// NAME
//   alerts.cpp - the alert thread: queue, pool watch, rate limits, sending
// SUMMARY
//   One thread per process. Each round (an event arrived, or a second
//   passed) it takes the queued events, samples the scanner pool and the
//   scan queue of the running runtime, passes everything through the
//   AlertLimiter and sends the mails that result, one SMTP transaction
//   each, to the first AlertSmtpServer that takes it. The mail goes
//   straight to that server: it is not scanned by this milter unless that
//   server itself runs the milter, and then it is just another message.
// DIAGNOSTICS
//   "alert sent: kind=K server=H:P rcpts=N subject=..." at info;
//   "alert not sent: kind=K subject=... errors=..." at warning, with each
//   server's reason; "alert queue full: event dropped kind=K" at warning
//   (once per 100 drops). Counters Alerts.Sent, Alerts.Failed,
//   Alerts.Dropped.
#include "icap-milter/stats/alerts.hpp"

#include "icap-milter/log/log.hpp"
#include "icap-milter/milter/runtime.hpp"
#include "icap-milter/net/smtp_client.hpp"
#include "icap-milter/stats/counters.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <thread>

#include <unistd.h>

namespace icapm {

namespace {

constexpr std::size_t kQueueLimit = 256;
constexpr auto kRound = std::chrono::seconds(1);
constexpr auto kMailBudget = std::chrono::seconds(60); // one alert, all servers, at most

// Shared - what message threads and the alert thread share, under mutex.
struct Shared {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<AlertEvent> queue;
    bool running = false;
    bool stopping = false;
    Deadline stop_deadline{};
    std::thread thread;
    // ~Shared - at exit without alerts_stop (a start-up failure): let the
    // thread end with the process rather than std::terminate.
    ~Shared() {
        if (thread.joinable()) thread.detach();
    }
};

// shared - the process's one instance.
Shared& shared() {
    static Shared s;
    return s;
}

// unix_now - wall-clock seconds.
std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// endpoints - AlertSmtpServer as parsed endpoints (the config checked them).
std::vector<SmtpEndpoint> endpoints(const Config& c) {
    std::vector<SmtpEndpoint> out;
    for (const auto& text : c.alert_smtp_servers) {
        std::string why;
        if (auto ep = parse_smtp_endpoint(text, &why)) out.push_back(*ep);
    }
    return out;
}

// Worker - the alert thread's own state (touched by that thread only).
class Worker {
public:
    // round - one pass: watch, limit, send.
    void round(std::vector<AlertEvent> events, bool stopping, Deadline stop_deadline) {
        auto rt = current_runtime();
        if (!rt) return;
        const Config& c = *rt->config;
        if (c.alert_recipients.empty()) return;
        AlertSettings s{c.alert_rate_limit, c.load_alert_interval, c.alert_infection};
        const AlertTime now = std::chrono::steady_clock::now();
        const std::int64_t wall = unix_now();
        if (!stopping && now - last_sample_ >= kRound - std::chrono::milliseconds(50)) {
            last_sample_ = now;
            if (rt->scanner.get() != scanner_) { // a reload: new pool, servers start afresh
                if (scanner_) pool_.rebase();
                scanner_ = rt->scanner.get();
            }
            for (auto& e : pool_.observe(rt->scanner->servers(), c.definitions_max_age, now, wall))
                events.push_back(std::move(e));
            if (auto e = load_.observe(rt->scanner->queued(), c.load_threshold, c.load_alert_interval, now, wall))
                events.push_back(std::move(*e));
        }
        std::vector<AlertMail> mails;
        for (const auto& e : events)
            if (auto m = limiter_.offer(e, s, now)) mails.push_back(std::move(*m));
        for (auto& m : stopping ? limiter_.flush() : limiter_.due(s, now)) mails.push_back(std::move(m));
        // The stop alert last: digests flushed at stop come before it.
        std::stable_partition(mails.begin(), mails.end(), [](const AlertMail& m) { return m.kind != AlertKind::Stop; });
        for (const auto& m : mails) send(*rt, m, stopping ? stop_deadline : Deadline::max());
    }

private:
    // send - one alert mail, primary then backups; logged and counted.
    void send(const Runtime& rt, const AlertMail& m, Deadline limit) {
        const Config& c = *rt.config;
        AlertHeaders h;
        h.host = rt.hostname;
        h.from = c.alert_sender.empty() ? "icap-milter@" + rt.hostname : c.alert_sender;
        h.to = c.alert_recipients;
        h.unix_time = unix_now();
        h.message_id = fmt::format("icap-milter.{}.{}.{}@{}", h.unix_time, ::getpid(), ++sequence_, rt.hostname);
        const std::string text = compose_alert_message(m, h);
        SmtpEnvelope env{rt.hostname, h.from, c.alert_recipients};
        const Deadline overall = std::min(SteadyClock::now() + kMailBudget, limit);
        SmtpResult r = smtp_send(endpoints(c), env, text, SmtpTimeouts{}, overall);
        if (r.ok) {
            ++counters().alerts_sent;
            spdlog::info("alert sent: kind={} server={} rcpts={}{} message_id=<{}> subject=\"{}\"{}", to_string(m.kind),
                         r.server, c.alert_recipients.size() - r.refused.size(),
                         r.errors.empty() ? "" : " failed_over=\"" + sanitize(r.error_text(), 400) + "\"",
                         h.message_id, sanitize(m.subject, 200),
                         r.refused.empty() ? "" : " refused=" + std::to_string(r.refused.size()));
        } else {
            ++counters().alerts_failed;
            spdlog::warn("alert not sent: kind={} subject=\"{}\" errors=\"{}\"", to_string(m.kind),
                         sanitize(m.subject, 200), sanitize(r.error_text(), 600));
        }
    }

    AlertLimiter limiter_;
    LoadWatch load_;
    PoolWatch pool_;
    AlertTime last_sample_{};
    const Scanner* scanner_ = nullptr; // the pool last sampled, to notice a reload (compared, never used)
    std::uint64_t sequence_ = 0;
};

// run - the alert thread: wait for events or a second, then a round.
void run() {
    Shared& sh = shared();
    Worker worker;
    std::unique_lock lock(sh.mutex);
    while (true) {
        sh.wake.wait_for(lock, kRound, [&] { return sh.stopping || !sh.queue.empty(); });
        std::vector<AlertEvent> events(std::make_move_iterator(sh.queue.begin()),
                                       std::make_move_iterator(sh.queue.end()));
        sh.queue.clear();
        const bool stopping = sh.stopping;
        const Deadline stop_deadline = sh.stop_deadline;
        lock.unlock();
        try {
            worker.round(std::move(events), stopping, stop_deadline);
        } catch (const std::exception& e) {
            spdlog::error("alerts: {}", sanitize(e.what()));
        }
        lock.lock();
        if (stopping && sh.queue.empty()) return;
    }
}

// list_text - at most max items, then "and N more".
std::string list_text(const std::vector<std::string>& items, std::size_t total, std::size_t max) {
    std::string out;
    for (std::size_t i = 0; i < items.size() && i < max; ++i) out += (out.empty() ? "" : ", ") + sanitize(items[i], 200);
    const std::size_t shown = std::min(items.size(), max);
    if (total > shown) out += fmt::format("{}and {} more", out.empty() ? "" : ", ", total - shown);
    return out.empty() ? "-" : out;
}

} // namespace

// post_alert - bounded queue; drop (and count) rather than wait.
void post_alert(AlertEvent event) {
    Shared& sh = shared();
    {
        std::lock_guard lock(sh.mutex);
        if (!sh.running || sh.stopping) return;
        if (sh.queue.size() >= kQueueLimit) {
            const auto n = ++counters().alerts_dropped;
            if (n % 100 == 1) spdlog::warn("alert queue full: event dropped kind={} dropped={}", to_string(event.kind), n);
            return;
        }
        sh.queue.push_back(std::move(event));
    }
    sh.wake.notify_one();
}

// infection_event - subject, digest line and body of one infected message.
AlertEvent infection_event(const InfectionAlert& a, std::int64_t unix_now) {
    const std::string viruses = list_text(a.viruses, a.viruses.size(), 10);
    const std::string qid = sanitize(a.queue_id, 40);
    AlertEvent e;
    e.kind = AlertKind::Infection;
    e.unix_time = unix_now;
    e.subject = "infected message " + qid + " from <" + sanitize(a.sender, 200) + ">: " + viruses;
    e.line = fmt::format("queue_id={} from=<{}> rcpts={} virus=\"{}\" action={}", qid, sanitize(a.sender, 200),
                         a.recipient_count, viruses, sanitize(a.action, 20));
    e.body = fmt::format("An infected message was found.\n\n"
                         "Queue id:   {}\n"
                         "Sender:     <{}>\n"
                         "Recipients: {}\n"
                         "Virus:      {}\n"
                         "Parts:      {}\n"
                         "Action:     {}\n"
                         "Client:     {}\n"
                         "Time:       {}\n\n"
                         "The message itself is not attached. The milter's log has the line for this queue id.\n",
                         qid, sanitize(a.sender, 200), list_text(a.recipients, a.recipient_count, 20), viruses,
                         list_text(a.files, a.files.size(), 16), sanitize(a.action, 20),
                         sanitize(a.client.empty() ? "-" : a.client, 200), alert_time_text(unix_now));
    return e;
}

// alert_infection - build the event here, queue it for the thread.
void alert_infection(const InfectionAlert& a) { post_alert(infection_event(a, unix_now())); }

// alerts_start - the thread, then the start alert.
void alerts_start(const std::string& version) {
    Shared& sh = shared();
    {
        std::lock_guard lock(sh.mutex);
        if (sh.running) return;
        sh.running = true;
        sh.stopping = false;
        sh.thread = std::thread(run);
    }
    auto rt = current_runtime();
    AlertEvent e;
    e.kind = AlertKind::Start;
    e.unix_time = unix_now();
    e.subject = "icap-milter " + version + " started";
    e.line = e.subject;
    e.body = "icap-milter " + version + " started at " + alert_time_text(e.unix_time) + ".\n";
    if (rt) {
        e.body += "Socket: " + sanitize(rt->config->socket, 300) + "\n";
        for (const auto& s : rt->config->icap_servers) e.body += "Scanner: " + sanitize(s, 300) + "\n";
    }
    post_alert(std::move(e));
}

// alerts_stop - the stop alert, a bounded wait, the join.
void alerts_stop(const std::string& why, std::chrono::milliseconds budget) {
    Shared& sh = shared();
    {
        std::lock_guard lock(sh.mutex);
        if (!sh.running) return;
    }
    AlertEvent e;
    e.kind = AlertKind::Stop;
    e.unix_time = unix_now();
    e.subject = "icap-milter stopping (" + sanitize(why, 60) + ")";
    e.line = e.subject;
    e.body = "icap-milter is stopping at " + alert_time_text(e.unix_time) + " (" + sanitize(why, 60) +
             "). Mail that reaches the MTA while it is stopped gets the MTA's milter_default_action.\n\n"
             "Counters:\n" + counters().render();
    std::thread thread;
    {
        // Queued and marked in one step, so the round that sends the stop
        // alert already knows the stop deadline.
        std::lock_guard lock(sh.mutex);
        sh.queue.push_back(std::move(e));
        sh.stopping = true;
        sh.stop_deadline = SteadyClock::now() + budget;
        thread = std::move(sh.thread);
    }
    sh.wake.notify_all();
    if (thread.joinable()) thread.join();
    std::lock_guard lock(sh.mutex);
    sh.running = false;
    sh.queue.clear();
}

} // namespace icapm
