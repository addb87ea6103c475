// NAME
//   session.cpp - one persistent ICAP connection: OPTIONS and RESPMOD
// SUMMARY
//   OPTIONS is fetched lazily and cached until shortly before its
//   Options-TTL (an hour when the server gives none). scan() streams the
//   item in 64 KiB chunks, hashing what it sends, so nothing is buffered
//   whole. With Preview it sends the first bytes, then waits for
//   "100 Continue" (send the rest) or a final reply (stop). Throughout the
//   upload it polls for input too: a server may answer before the upload
//   ends, and then the session stops sending, reads the reply to its end
//   and drops the connection. A reply is read through its last chunk
//   before the connection is reused; ICAP "Connection: close" is obeyed.
//   A pooled connection that turns out closed (EOF or reset before the
//   first reply byte) is retried once on a fresh connection.
// DIAGNOSTICS
//   Nothing escapes scan() or options(): failures become Verdict{Error}
//   (or nullopt) with a reason, logged at warning level with the job id.
//   Every wait is bounded: connect by Timeouts::connect, each read or
//   write wait and a reply's header part by Timeouts::io, and a whole
//   call by Timeouts::total when set.
#include "icap-milter/scan/session.hpp"

#include "icap-milter/common/sha256.hpp"
#include "icap-milter/icap/options.hpp"
#include "icap-milter/icap/request.hpp"
#include "icap-milter/icap/response.hpp"
#include "icap-milter/icap/rules.hpp"
#include "icap-milter/net/socket.hpp"
#include "icap-milter/net/tls.hpp"
#include "icap-milter/scan/pump.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace icapm {

namespace {

// Upload chunk size: large enough for throughput, small enough to bound memory.
constexpr std::size_t kChunkSize = 64 * 1024;
// Read buffer for replies.
constexpr std::size_t kReadSize = 16 * 1024;
// How much larger than the item a reply body may be (block pages).
constexpr std::uint64_t kReplySlack = 16ULL << 20;
// OPTIONS lifetime when the server gives no Options-TTL.
constexpr std::chrono::seconds kDefaultOptionsTtl{3600};

// SourceError - the ByteSource failed or lied about its size.
struct SourceError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Outcome - how one exchange attempt ended.
enum class Outcome { Done, Stale, Failed };

// error_verdict - a Verdict of kind Error.
Verdict error_verdict(std::string reason, int status = 0) {
    Verdict v;
    v.kind = VerdictKind::Error;
    v.reason = std::move(reason);
    v.icap_status = status;
    return v;
}

// istag_of - the ISTag header of a reply, cleaned; empty when absent.
std::string istag_of(const IcapResponse& r) {
    const HeaderField* f = r.headers.find("ISTag");
    return f ? clean_istag(f->value) : std::string{};
}

} // namespace

struct IcapSession::Impl {
    IcapUri uri;
    std::string uri_text;
    std::shared_ptr<const TlsContext> tls;
    Timeouts timeouts;
    std::string user_agent;
    bool preview_enabled = true;
    TlsResumption resumption;            // declared before conn: outlives it
    std::shared_ptr<ServerShared> shared; // may be null (a lone session)
    std::unique_ptr<Connection> conn;
    unsigned exchanges = 0;              // completed exchanges on conn
    bool connect_failed = false;         // the last call never got a connection
    std::optional<TlsPeerInfo> peer;     // of the last TLS connection made
    std::optional<ServerOptions> opts;
    SteadyClock::time_point opts_refresh{};
    std::vector<char> rbuf = std::vector<char>(kReadSize);
    std::vector<char> chunk = std::vector<char>(kChunkSize);

    // AttemptResult - one try at an exchange.
    struct AttemptResult {
        Outcome outcome = Outcome::Failed;
        std::string error;
    };

    // drop - close the connection and forget it. abortive: reset it, as
    // a request was left unfinished and nothing more should be sent.
    void drop(bool abortive = false) noexcept {
        if (!conn) return;
        if (abortive)
            conn->abort();
        else
            conn->shutdown();
        conn.reset();
        exchanges = 0;
    }

    // finish - after a complete reply: keep the TLS session, and the
    // connection if it may carry another request; abortive as for drop().
    void finish(bool reusable, bool abortive = false) {
        conn->keep_tls_session(resumption);
        if (shared) shared->keep_tls(resumption);
        if (reusable)
            ++exchanges;
        else
            drop(abortive);
    }

    // idle_alive - whether a pooled connection still looks usable: an idle
    // one that is readable has either been closed or sent junk.
    bool idle_alive() {
        int rev = wait_fd(conn->fd(), POLLIN, SteadyClock::now());
        if (rev == 0 && !conn->has_buffered_input()) return true;
        if (rev < 0) return false;
        IoResult r = conn->read_some(std::span<char>(rbuf.data(), rbuf.size()));
        return r.status == IoStatus::WantRead || r.status == IoStatus::WantWrite; // TLS housekeeping only
    }

    // ensure_connection - a live connection; *reused says if it served before.
    bool ensure_connection(Deadline overall, bool* reused, std::string* error) {
        if (conn && exchanges > 0 && !idle_alive()) {
            spdlog::debug("icap server={} pooled connection closed by the server while idle", uri_text);
            drop();
        }
        if (conn) {
            *reused = exchanges > 0;
            return true;
        }
        *reused = false;
        Deadline d = std::min(SteadyClock::now() + timeouts.connect, overall);
        if (uri.tls) {
            if (!tls) {
                *error = "icaps:// server but no TLS context configured";
                return false;
            }
            if (shared) shared->load_tls(resumption);
            conn = tls_connect(*tls, uri.host, uri.port, d, &resumption, error);
            if (conn) peer = tls_peer_info(*conn);
        } else {
            conn = connect_plain(uri.host, uri.port, d, error);
        }
        if (!conn) return false;
        exchanges = 0;
        spdlog::debug("icap server={} connected ({})", uri_text, conn->describe());
        return true;
    }

    // with_retry - run attempt on a connection; once more on a fresh one
    // when a pooled connection was found closed before any reply byte.
    template <class Attempt>
    AttemptResult with_retry(Deadline overall, const std::string& job, Attempt&& attempt) {
        AttemptResult r;
        for (int round = 0; round < 2; ++round) {
            bool reused = false;
            if (!ensure_connection(overall, &reused, &r.error)) {
                connect_failed = round == 0;
                r.outcome = Outcome::Failed;
                return r;
            }
            r = attempt(overall);
            if (r.outcome != Outcome::Done) drop(true);
            if (r.outcome == Outcome::Stale && reused && round == 0) {
                spdlog::debug("job={} server={} pooled connection was stale ({}); retrying on a new one",
                              job, uri_text, r.error);
                continue;
            }
            if (r.outcome == Outcome::Stale) r.outcome = Outcome::Failed;
            return r;
        }
        return r;
    }

    // failed - the attempt result for a pump failure.
    static AttemptResult failed(const Pump& pump, const ResponseParser& parser) {
        AttemptResult r;
        r.outcome = pump.disconnected() && parser.bytes_seen() == 0 ? Outcome::Stale : Outcome::Failed;
        r.error = pump.error();
        return r;
    }

    // overall_deadline - the end of this call under Timeouts::total.
    Deadline overall_deadline() const {
        return timeouts.total.count() > 0 ? SteadyClock::now() + timeouts.total : Deadline::max();
    }

    // fetch_options - cached OPTIONS, refreshed shortly before expiry.
    std::optional<ServerOptions> fetch_options(Deadline overall, const std::string& job, std::string* error,
                                               bool force = false) {
        auto now = SteadyClock::now();
        connect_failed = false;
        if (!force && opts && now < opts_refresh) return opts;
        if (!force && shared) {
            if (auto cached = shared->fresh_options(now)) {
                opts = std::move(cached);
                opts_refresh = shared->refresh_at();
                return opts;
            }
        }
        std::optional<ServerOptions> fresh;
        const std::string request = build_options_request(uri, user_agent);
        AttemptResult r = with_retry(overall, job, [&](Deadline dl) {
            ResponseParser parser;
            Pump pump(*conn, parser, timeouts, dl, rbuf);
            if (pump.send(request) == Pump::Step::Failed || pump.receive() == Pump::Step::Failed)
                return failed(pump, parser);
            const IcapResponse& resp = parser.response();
            finish(!resp.connection_close && parser.excess() == 0 && !pump.peer_closed());
            AttemptResult ok;
            ok.outcome = Outcome::Done;
            fresh = parse_server_options(resp, &ok.error);
            return ok;
        });
        if (r.outcome != Outcome::Done || !fresh) {
            opts.reset();
            *error = r.error;
            spdlog::warn("job={} server={} OPTIONS failed: {}", job, uri_text, r.error);
            return std::nullopt;
        }
        auto ttl = fresh->ttl.count() > 0 ? fresh->ttl : kDefaultOptionsTtl;
        // Refresh a little early so a scan never runs on expired OPTIONS.
        auto margin = std::min<std::chrono::seconds>(ttl / 10, std::chrono::seconds(60));
        opts_refresh = SteadyClock::now() + (ttl - margin);
        if (!opts || opts->istag != fresh->istag)
            spdlog::debug("icap server={} service=\"{}\" istag=\"{}\"{}{} preview={} ttl={}s", uri_text,
                         fresh->service, fresh->istag, fresh->version_info.empty() ? "" : " version=",
                         fresh->version_info, fresh->preview ? std::to_string(*fresh->preview) : "no",
                         ttl.count());
        opts = std::move(fresh);
        if (shared) shared->store_options(*opts, opts_refresh);
        return opts;
    }

    // reread_digest - SHA-256 of the first upto bytes of data, read again
    // from the start: only a 200 echo needs it, so the send path does not
    // hash. A source that yields other bytes the second time gives another
    // digest, so its echo is never taken for clean.
    Digest reread_digest(ByteSource& data, std::uint64_t upto) {
        data.rewind();
        Sha256 h;
        std::uint64_t done = 0;
        while (done < upto) {
            const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), upto - done));
            const std::size_t n = std::min(data.read(std::span<char>(chunk.data(), want)), want);
            if (n == 0) break;
            h.update(std::string_view(chunk.data(), n));
            done += n;
        }
        return h.finish();
    }

    // respmod - one RESPMOD attempt; fills *verdict when a reply came.
    AttemptResult respmod(Deadline dl, const ScanRequest& req, ByteSource& data, const ServerOptions& o,
                          Verdict* verdict) {
        data.rewind();
        const std::uint64_t size = data.size();
        std::optional<std::size_t> preview;
        if (preview_enabled && o.preview)
            preview = static_cast<std::size_t>(std::min<std::uint64_t>(*o.preview, size));
        RespmodFrame frame = build_respmod_head(
            uri, RespmodHead{user_agent, req.filename, size, preview});

        ParserLimits lim;
        // A reply may replace the item with a block page, never grow it much.
        lim.max_body = size > UINT64_MAX - kReplySlack ? UINT64_MAX : size + kReplySlack;
        ResponseParser parser(lim);
        Pump pump(*conn, parser, timeouts, dl, rbuf, req.cancel);
        std::uint64_t sent = 0;
        bool upload_complete = false;    // the whole body and its last chunk went out
        bool decided_on_preview = false; // final reply to a preview: the exchange is over
        bool continue_then_final = false;

        // send_body - data bytes up to offset upto, as chunks.
        auto send_body = [&](std::uint64_t upto) {
            while (sent < upto) {
                std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), upto - sent));
                std::size_t n = data.read(std::span<char>(chunk.data(), want));
                if (n == 0) throw SourceError(fmt::format("item ended at {} of {} bytes", sent, size));
                n = std::min(n, want);
                std::string_view bytes(chunk.data(), n);
                sent += n;
                std::string framed = chunk_header(n);
                framed.append(bytes);
                framed.append(kChunkEnd);
                Pump::Step s = pump.send(framed);
                if (s != Pump::Step::Sent) return s;
            }
            return Pump::Step::Sent;
        };

        Pump::Step st = pump.send(frame.bytes);
        if (st == Pump::Step::Sent && preview) {
            st = send_body(*preview);
            const bool ieof = *preview == size;
            if (st == Pump::Step::Sent) st = pump.send(ieof ? kLastChunkIeof : kLastChunk);
            if (st == Pump::Step::Sent && ieof) {
                upload_complete = true;
            } else if (st == Pump::Step::Sent) {
                pump.auto_continue = false;
                st = pump.receive();
                pump.auto_continue = true;
                if (st == Pump::Step::Reply && parser.state() == ResponseParser::State::Continue) {
                    while (parser.resume() == ResponseParser::State::Continue) {
                    }
                    if (parser.state() == ResponseParser::State::NeedMore) {
                        st = send_body(size);
                        if (st == Pump::Step::Sent) st = pump.send(kLastChunk);
                        if (st == Pump::Step::Sent) upload_complete = true;
                    } else {
                        // 100 and at once a final reply: take the reply, send
                        // nothing more, and do not trust the connection again.
                        continue_then_final = true;
                    }
                } else if (st == Pump::Step::Reply) {
                    decided_on_preview = true;
                }
            }
        } else if (st == Pump::Step::Sent) {
            st = send_body(size);
            if (st == Pump::Step::Sent) st = pump.send(kLastChunk);
            if (st == Pump::Step::Sent) upload_complete = true;
        }
        if (st != Pump::Step::Failed && parser.state() != ResponseParser::State::Done) st = pump.receive();
        if (st == Pump::Step::Failed || parser.state() != ResponseParser::State::Done) {
            AttemptResult r = failed(pump, parser);
            if (r.error.empty()) r.error = "ICAP protocol error: " + parser.error();
            return r;
        }

        const IcapResponse& resp = parser.response();
        const bool early = !upload_complete && !decided_on_preview;
        if (early && !continue_then_final)
            spdlog::debug("job={} server={} early reply after {} of {} bytes; not reusing the connection",
                          req.job_id, uri_text, sent, size);
        finish(!early && !resp.connection_close && parser.excess() == 0 && !pump.peer_closed(),
               early || continue_then_final);

        SentBody body{sent, [&] { return reread_digest(data, sent); }, upload_complete && sent == size};
        *verdict = classify_respmod(resp, body);
        std::string istag = istag_of(resp);
        if (istag.empty() && opts) istag = opts->istag;
        if (opts && !istag.empty() && istag != opts->istag) {
            spdlog::debug("icap server={} ISTag changed from \"{}\" to \"{}\"", uri_text,
                         opts->istag, istag);
            opts->istag = istag;
        }
        verdict->istag = std::move(istag);
        AttemptResult ok;
        ok.outcome = Outcome::Done;
        return ok;
    }

    // scan - OPTIONS if needed, then RESPMOD with one retry on a stale connection.
    Verdict scan(const ScanRequest& req, ByteSource& data) {
        const auto start = SteadyClock::now();
        const Deadline overall = std::min(overall_deadline(), req.deadline);
        std::string err;
        Verdict v;
        auto o = fetch_options(overall, req.job_id, &err);
        if (!o) {
            v = error_verdict("OPTIONS failed: " + err);
        } else if (!o->supports("RESPMOD")) {
            v = error_verdict("ICAP service does not offer RESPMOD");
        } else {
            AttemptResult r;
            try {
                r = with_retry(overall, req.job_id,
                               [&](Deadline dl) { return respmod(dl, req, data, *o, &v); });
            } catch (const std::exception& e) {
                // The ByteSource failed mid-request: the connection is unusable.
                drop(true);
                r.outcome = Outcome::Failed;
                r.error = fmt::format("reading the item failed: {}", e.what());
            }
            if (r.outcome != Outcome::Done) v = error_verdict(r.error);
        }
        v.server = uri_text;
        auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
        const std::string file = header_safe(req.filename, 80);
        if (v.kind == VerdictKind::Error)
            spdlog::warn("job={} server={} file=\"{}\" size={} verdict=error reason=\"{}\" ms={}", req.job_id,
                         uri_text, file, data.size(), v.reason, ms);
        else
            spdlog::debug("job={} server={} file=\"{}\" size={} icap={} verdict={} threats=\"{}\" reason=\"{}\" "
                          "istag=\"{}\" ms={}",
                          req.job_id, uri_text, file, data.size(), v.icap_status, to_string(v.kind),
                          fmt::join(v.threats, ", "), v.reason, v.istag, ms);
        return v;
    }
};

// IcapSession - remember where and how to connect; no I/O yet.
IcapSession::IcapSession(IcapUri uri, std::shared_ptr<const TlsContext> tls, Timeouts timeouts,
                         std::string user_agent, std::shared_ptr<ServerShared> shared)
    : uri_(std::move(uri)), impl_(std::make_unique<Impl>()) {
    impl_->shared = std::move(shared);
    impl_->uri = uri_;
    impl_->uri_text = uri_.str();
    impl_->tls = std::move(tls);
    impl_->timeouts = timeouts;
    impl_->user_agent = std::move(user_agent);
}

// ~IcapSession - closes the connection (Impl owns it).
IcapSession::~IcapSession() = default;

// options - cached or freshly fetched OPTIONS; never throws.
std::optional<ServerOptions> IcapSession::options(std::string* error) {
    std::string err;
    try {
        auto o = impl_->fetch_options(impl_->overall_deadline(), "-", &err);
        if (!o && error) *error = err;
        return o;
    } catch (const std::exception& e) {
        impl_->drop(true);
        if (error) *error = fmt::format("OPTIONS failed: {}", e.what());
    }
    return std::nullopt;
}

// refresh_options - a forced OPTIONS round trip; never throws.
std::optional<ServerOptions> IcapSession::refresh_options(std::string* error) {
    std::string err;
    try {
        auto o = impl_->fetch_options(impl_->overall_deadline(), "-", &err, true);
        if (!o && error) *error = err;
        return o;
    } catch (const std::exception& e) {
        impl_->drop(true);
        if (error) *error = fmt::format("OPTIONS failed: {}", e.what());
    }
    return std::nullopt;
}

// connect_failed - whether the last call never reached the server.
bool IcapSession::connect_failed() const noexcept { return impl_->connect_failed; }

// tls_info - details of the last TLS connection made.
std::optional<TlsPeerInfo> IcapSession::tls_info() const { return impl_->peer; }

// fresh_options - cached OPTIONS, unless due for a refresh.
std::optional<ServerOptions> ServerShared::fresh_options(Deadline now) const {
    std::lock_guard lock(mutex_);
    if (options_ && now < refresh_at_) return options_;
    return std::nullopt;
}

// store_options - replace the cache.
void ServerShared::store_options(const ServerOptions& o, Deadline refresh_at) {
    std::lock_guard lock(mutex_);
    options_ = o;
    refresh_at_ = refresh_at;
}

// invalidate_options - empty the cache.
void ServerShared::invalidate_options() {
    std::lock_guard lock(mutex_);
    options_.reset();
    refresh_at_ = Deadline::min();
}

// refresh_at - the cache's refresh time.
Deadline ServerShared::refresh_at() const {
    std::lock_guard lock(mutex_);
    return options_ ? refresh_at_ : Deadline::min();
}

// load_tls - hand the shared TLS session to one session's slot.
void ServerShared::load_tls(TlsResumption& into) const {
    std::lock_guard lock(mutex_);
    if (tls_.get()) into.store(tls_.get());
}

// keep_tls - take a session's TLS session as the shared one.
void ServerShared::keep_tls(const TlsResumption& from) {
    std::lock_guard lock(mutex_);
    if (from.get()) tls_.store(from.get());
}

// scan - never throws; every failure is a Verdict of kind Error.
Verdict IcapSession::scan(const ScanRequest& request, ByteSource& data) {
    try {
        return impl_->scan(request, data);
    } catch (const std::exception& e) {
        impl_->drop(true);
        Verdict v = error_verdict(fmt::format("internal error: {}", e.what()));
        v.server = impl_->uri_text;
        return v;
    } catch (...) {
        impl_->drop(true);
        Verdict v = error_verdict("internal error");
        v.server = impl_->uri_text;
        return v;
    }
}

// close - drop the connection; the next call reconnects.
void IcapSession::close() noexcept { impl_->drop(); }

// set_preview - per-server switch for Preview.
void IcapSession::set_preview(bool enabled) noexcept { impl_->preview_enabled = enabled; }

// invalidate_options - force a fresh OPTIONS on the next call.
void IcapSession::invalidate_options() noexcept { impl_->opts.reset(); }

} // namespace icapm
