// NAME
//   store.cpp - the quarantine directory: atomic entries, listing, release
// SUMMARY
//   All file access goes through the directory descriptor opened by the
//   constructor (openat, renameat2, unlinkat), never through a path built
//   from an ID, and every open carries O_NOFOLLOW. Temp files are named
//   ".tmp-<16 hex>" (hidden, never an ID) and are renamed into place with
//   RENAME_NOREPLACE, so an entry is never overwritten; a fresh random ID
//   is drawn if one exists. The sidecar is rewritten (temp + rename) only
//   under the flock() on DIR/.lock.
// DIAGNOSTICS
//   std::system_error with errno, prefixed "quarantine: ", on any I/O
//   failure. store() removes whatever it created before it throws.
//   enforce() also removes temp files and sidecar-less messages older than
//   an hour (left by a crash), without reporting them as entries.
#include "icap-milter/quarantine/store.hpp"

#include "icap-milter/common/ascii.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

namespace icapm {

namespace {

constexpr std::size_t kChunk = 64 * 1024;
constexpr std::size_t kMaxSidecar = 1u << 20;
constexpr std::int64_t kStaleSeconds = 3600;
constexpr std::size_t kMaxQueueId = 32;

// sys_error - std::system_error for err (default: the current errno).
std::system_error sys_error(const std::string& what, int err = errno) {
    return std::system_error(err, std::generic_category(), "quarantine: " + what);
}

// now_seconds - the wall clock in Unix seconds.
std::int64_t now_seconds() { return static_cast<std::int64_t>(std::time(nullptr)); }

// utc_text - t formatted with strftime in UTC.
std::string utc_text(std::int64_t t, const char* format) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    char buf[32] = "";
    if (gmtime_r(&tt, &tm)) std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

// stamp - the time part of an ID, "YYYYMMDDTHHMMSSZ".
std::string stamp(std::int64_t t) { return utc_text(t, "%Y%m%dT%H%M%SZ"); }

// id_time - the time an ID carries (its first 16 characters, UTC).
std::int64_t id_time(std::string_view id) {
    std::tm tm{};
    std::string s(id.substr(0, 16));
    if (!::strptime(s.c_str(), "%Y%m%dT%H%M%SZ", &tm)) return 0;
    return static_cast<std::int64_t>(::timegm(&tm));
}

// random_hex - n random bytes from getrandom() as lower-case hex.
std::string random_hex(std::size_t n) {
    unsigned char buf[16];
    std::size_t got = 0;
    while (got < n) {
        ssize_t r = ::getrandom(buf + got, n - got, 0);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw sys_error("getrandom");
        }
        got += static_cast<std::size_t>(r);
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        out += hex[buf[i] >> 4];
        out += hex[buf[i] & 0x0f];
    }
    return out;
}

// is_alnum - ASCII letter or digit.
constexpr bool is_alnum(char c) noexcept {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// queue_part - the queue id as it may appear in an ID: alphanumerics only.
std::string queue_part(std::string_view qid) {
    std::string out;
    for (char c : qid)
        if (is_alnum(c) && out.size() < kMaxQueueId) out += c;
    return out.empty() ? "noqid" : out;
}

// make_id - a fresh ID for time t and queue id qid.
std::string make_id(std::int64_t t, std::string_view qid) {
    return stamp(t) + "-" + queue_part(qid) + "-" + random_hex(4);
}

// write_all - write every byte, riding out EINTR and short writes.
void write_all(int fd, const char* p, std::size_t n, const char* what) {
    while (n > 0) {
        ssize_t w = ::write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw sys_error(std::string("write ") + what);
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

// fsync_fd - fsync or throw.
void fsync_fd(int fd, const char* what) {
    if (::fsync(fd) != 0) throw sys_error(std::string("fsync ") + what);
}

// TempFile - a hidden 0600 file in the directory; unlinked unless committed.
class TempFile {
public:
    // TempFile - create exclusively (a name clash draws a new name).
    explicit TempFile(int dirfd) : dirfd_(dirfd) {
        for (int attempt = 0;; ++attempt) {
            name_ = ".tmp-" + random_hex(8);
            fd_.reset(::openat(dirfd_, name_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
            if (fd_) break;
            if (errno != EEXIST || attempt == 8) throw sys_error("cannot create a temp file");
        }
        // The umask may have narrowed it further; the contract is exactly 0600.
        if (::fchmod(fd_.get(), 0600) != 0) {
            int err = errno;
            ::unlinkat(dirfd_, name_.c_str(), 0);
            throw sys_error("fchmod temp file", err);
        }
    }
    // ~TempFile - an uncommitted temp file never outlives the operation.
    ~TempFile() {
        if (!name_.empty()) ::unlinkat(dirfd_, name_.c_str(), 0);
    }
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;

    // fd - where to write.
    int fd() const noexcept { return fd_.get(); }
    // write - append bytes.
    void write(std::string_view data) { write_all(fd_.get(), data.data(), data.size(), "temp file"); }
    // finish - fsync and close (close can report a delayed write error).
    void finish() {
        fsync_fd(fd_.get(), "temp file");
        if (::close(fd_.release()) != 0) throw sys_error("close temp file");
    }
    // commit - rename to final; false (nothing changed) when final exists
    // and replace is off.
    bool commit(const std::string& final_name, bool replace) {
        if (replace) {
            if (::renameat(dirfd_, name_.c_str(), dirfd_, final_name.c_str()) != 0)
                throw sys_error("rename to " + final_name);
        } else if (::renameat2(dirfd_, name_.c_str(), dirfd_, final_name.c_str(), RENAME_NOREPLACE) != 0) {
            if (errno == EEXIST) return false;
            if (errno != EINVAL && errno != ENOSYS) throw sys_error("rename to " + final_name);
            // No RENAME_NOREPLACE on this file system: link() refuses too.
            if (::linkat(dirfd_, name_.c_str(), dirfd_, final_name.c_str(), 0) != 0) {
                if (errno == EEXIST) return false;
                throw sys_error("link to " + final_name);
            }
            ::unlinkat(dirfd_, name_.c_str(), 0);
        }
        name_.clear();
        return true;
    }

private:
    int dirfd_;
    std::string name_;
    UniqueFd fd_;
};

// Undo - names to unlink again unless the operation completes.
class Undo {
public:
    explicit Undo(int dirfd) : dirfd_(dirfd) {}
    // ~Undo - unlink what was added since, unless done() was called.
    ~Undo() {
        for (const auto& n : names_) ::unlinkat(dirfd_, n.c_str(), 0);
    }
    Undo(const Undo&) = delete;
    Undo& operator=(const Undo&) = delete;
    // add - remove name if we fail later.
    void add(std::string name) { names_.push_back(std::move(name)); }
    // done - keep everything.
    void done() noexcept { names_.clear(); }

private:
    int dirfd_;
    std::vector<std::string> names_;
};

// DirLock - an exclusive flock() on DIR/.lock for its lifetime.
class DirLock {
public:
    // DirLock - wait for the lock (creating the lock file 0600 if needed).
    explicit DirLock(int dirfd)
        : fd_(::openat(dirfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) {
        if (!fd_) throw sys_error("cannot open .lock");
        while (::flock(fd_.get(), LOCK_EX) != 0)
            if (errno != EINTR) throw sys_error("flock .lock");
    }
    // ~DirLock - closing the descriptor drops the lock.

private:
    UniqueFd fd_;
};

// OwnedFileSource - a pread cursor over a file it owns.
class OwnedFileSource final : public ByteSource {
public:
    OwnedFileSource(UniqueFd fd, std::uint64_t size) : fd_(std::move(fd)), size_(size) {}
    // read - the next bytes; EIO when the file shrank.
    std::size_t read(std::span<char> out) override {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), size_ - pos_));
        if (want == 0) return 0;
        for (;;) {
            ssize_t r = ::pread(fd_.get(), out.data(), want, static_cast<off_t>(pos_));
            if (r < 0) {
                if (errno == EINTR) continue;
                throw sys_error("read message");
            }
            if (r == 0) throw sys_error("message file shorter than expected", EIO);
            pos_ += static_cast<std::uint64_t>(r);
            return static_cast<std::size_t>(r);
        }
    }
    // rewind - back to byte 0.
    void rewind() override { pos_ = 0; }
    // size - the file's size when opened.
    std::uint64_t size() const override { return size_; }

private:
    UniqueFd fd_;
    std::uint64_t size_;
    std::uint64_t pos_ = 0;
};

// BodyCanon - the canonical body (see store.hpp) fed into a Sha256.
class BodyCanon {
public:
    // feed - more message bytes.
    void feed(std::string_view data) {
        for (char c : data) in_body_ ? body_byte(c) : header_byte(c);
        if (out_.size() >= kChunk) flush();
    }
    // finish - the digest of the body seen.
    Digest finish() {
        if (in_body_) {
            if (cr_) content('\r');
            if (has_content_) out_ += "\r\n";
        }
        flush();
        return sha_.finish();
    }

private:
    // header_byte - look for the empty line that ends the header block.
    void header_byte(char c) {
        if (c == '\n') {
            if (!has_content_) in_body_ = true;
            has_content_ = cr_ = false;
        } else if (c == '\r') {
            if (cr_) has_content_ = true;
            cr_ = true;
        } else {
            has_content_ = true;
            cr_ = false;
        }
    }
    // body_byte - one body byte: line ends become CRLF, empty lines wait.
    void body_byte(char c) {
        if (c == '\n') {
            if (has_content_) out_ += "\r\n";
            else ++empty_lines_;
            has_content_ = cr_ = false;
        } else if (c == '\r') {
            if (cr_) content('\r'); // the earlier CR was not a line end
            cr_ = true;
        } else {
            if (cr_) content('\r');
            content(c);
            cr_ = false;
        }
    }
    // content - a byte of line content, after any pending empty lines.
    void content(char c) {
        if (!has_content_) {
            for (; empty_lines_ > 0; --empty_lines_) out_ += "\r\n";
            has_content_ = true;
        }
        out_ += c;
    }
    // flush - hand the buffered output to the hash.
    void flush() {
        sha_.update(out_);
        out_.clear();
    }

    Sha256 sha_;
    std::string out_;
    bool in_body_ = false;
    bool has_content_ = false;
    bool cr_ = false;
    std::uint64_t empty_lines_ = 0;
};

// strings_json - a JSON array of strings.
nlohmann::json strings_json(const std::vector<std::string>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& s : v) a.push_back(s);
    return a;
}

// strings_from - the strings of a JSON array (other members ignored).
std::vector<std::string> strings_from(const nlohmann::json& j, const char* key) {
    std::vector<std::string> out;
    auto it = j.find(key);
    if (it == j.end() || !it->is_array()) return out;
    for (const auto& v : *it)
        if (v.is_string()) out.push_back(v.get<std::string>());
    return out;
}

// parse_status - the inverse of to_string(MessageStatus); never Clean by default.
MessageStatus parse_status(std::string_view s) {
    for (auto st : {MessageStatus::Clean, MessageStatus::Infected, MessageStatus::Unscanned, MessageStatus::Ambiguous,
                    MessageStatus::Blocked, MessageStatus::Skipped})
        if (s == to_string(st)) return st;
    return MessageStatus::Unscanned;
}

// sidecar_json - the JSON sidecar of an entry.
nlohmann::json sidecar_json(const QuarantineEntry& e) {
    nlohmann::json j;
    j["version"] = 1;
    j["id"] = e.id;
    j["time"] = e.time;
    j["time_iso"] = utc_text(e.time, "%Y-%m-%dT%H:%M:%SZ");
    j["queue_id"] = e.queue_id;
    j["job_id"] = e.job_id;
    j["client"] = e.client;
    j["sender"] = e.sender;
    j["recipients"] = strings_json(e.recipients);
    j["verdicts"] = e.verdicts;
    j["viruses"] = strings_json(e.viruses);
    j["status"] = to_string(e.status);
    j["action"] = to_string(e.action);
    j["size"] = e.size;
    j["sha256"] = e.sha256;
    j["body_sha256"] = e.body_sha256;
    if (e.released) {
        j["released"] = {{"time", e.released->time},
                         {"time_iso", utc_text(e.released->time, "%Y-%m-%dT%H:%M:%SZ")},
                         {"to", strings_json(e.released->to)},
                         {"count", e.released->count},
                         {"claimed", e.released->claimed}};
    } else {
        j["released"] = nullptr;
    }
    return j;
}

// sidecar_text - the sidecar file's content.
std::string sidecar_text(const QuarantineEntry& e) { return quarantine_json(e, 2) + "\n"; }

// parse_sidecar - an entry from its JSON; nullopt when it does not parse.
std::optional<QuarantineEntry> parse_sidecar(const std::string& text) {
    try {
        auto j = nlohmann::json::parse(text);
        if (!j.is_object()) return std::nullopt;
        QuarantineEntry e;
        e.id = j.value("id", std::string());
        e.time = j.value("time", std::int64_t{0});
        e.queue_id = j.value("queue_id", std::string());
        e.job_id = j.value("job_id", std::string());
        e.client = j.value("client", std::string());
        e.sender = j.value("sender", std::string());
        e.recipients = strings_from(j, "recipients");
        e.verdicts = j.value("verdicts", std::string());
        e.viruses = strings_from(j, "viruses");
        e.status = parse_status(j.value("status", std::string()));
        e.action = parse_action(j.value("action", std::string())).value_or(Action::Reject);
        e.size = j.value("size", std::uint64_t{0});
        e.sha256 = j.value("sha256", std::string());
        e.body_sha256 = j.value("body_sha256", std::string());
        auto r = j.find("released");
        if (r != j.end() && r->is_object()) {
            QuarantineRelease rel;
            rel.time = r->value("time", std::int64_t{0});
            rel.to = strings_from(*r, "to");
            rel.count = r->value("count", 0u);
            rel.claimed = r->value("claimed", 0u);
            e.released = rel;
        }
        return e;
    } catch (const nlohmann::json::exception&) {
        return std::nullopt;
    }
}

// file_size_at - the size of name in dirfd; 0 when it does not exist.
std::uint64_t file_size_at(int dirfd, const std::string& name) {
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) return 0;
        throw sys_error("stat " + name);
    }
    return static_cast<std::uint64_t>(st.st_size);
}

// read_entry - the sidecar of a valid id; nullopt when absent or corrupt.
std::optional<QuarantineEntry> read_entry(int dirfd, const std::string& id) {
    const std::string name = id + ".json";
    UniqueFd fd(::openat(dirfd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) return std::nullopt;
        throw sys_error("open " + name);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw sys_error("stat " + name);
    if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > kMaxSidecar) return std::nullopt;
    std::string text(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t got = 0;
    while (got < text.size()) {
        ssize_t r = ::read(fd.get(), text.data() + got, text.size() - got);
        if (r < 0) {
            if (errno == EINTR) continue;
            throw sys_error("read " + name);
        }
        if (r == 0) break;
        got += static_cast<std::size_t>(r);
    }
    text.resize(got);
    auto e = parse_sidecar(text);
    if (!e || e->id != id) return std::nullopt;
    e->disk_bytes = got + file_size_at(dirfd, id + ".eml");
    return e;
}

// write_sidecar - replace (or, with replace off, create) an entry's sidecar.
bool write_sidecar(int dirfd, const QuarantineEntry& e, bool replace) {
    TempFile tmp(dirfd);
    tmp.write(sidecar_text(e));
    tmp.finish();
    return tmp.commit(e.id + ".json", replace);
}

// Names - the directory's entries by kind.
struct Names {
    std::vector<std::string> ids;        // valid IDs with a sidecar, sorted
    std::vector<std::string> orphans;    // valid IDs with a message but no sidecar
    std::vector<std::string> temps;      // ".tmp-*" files
};

// scan_dir - read the directory once.
Names scan_dir(int dirfd) {
    UniqueFd dup_fd(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dup_fd) throw sys_error("open directory");
    std::unique_ptr<DIR, int (*)(DIR*)> d(::fdopendir(dup_fd.get()), ::closedir);
    if (!d) throw sys_error("fdopendir");
    dup_fd.release(); // owned by the DIR now
    std::vector<std::string> jsons, emls;
    Names out;
    errno = 0;
    while (dirent* ent = ::readdir(d.get())) {
        std::string_view n = ent->d_name;
        if (n.starts_with(".tmp-")) out.temps.emplace_back(n);
        else if (n.ends_with(".json") && valid_quarantine_id(n.substr(0, n.size() - 5)))
            jsons.emplace_back(n.substr(0, n.size() - 5));
        else if (n.ends_with(".eml") && valid_quarantine_id(n.substr(0, n.size() - 4)))
            emls.emplace_back(n.substr(0, n.size() - 4));
        errno = 0;
    }
    if (errno != 0) throw sys_error("readdir");
    std::sort(jsons.begin(), jsons.end());
    std::sort(emls.begin(), emls.end());
    std::set_difference(emls.begin(), emls.end(), jsons.begin(), jsons.end(), std::back_inserter(out.orphans));
    out.ids = std::move(jsons);
    return out;
}

// unlink_entry - remove both files of id; true when either existed.
bool unlink_entry(int dirfd, const std::string& id) {
    bool any = false;
    // The sidecar first: without it the entry no longer exists.
    for (const char* ext : {".json", ".eml"}) {
        std::string name = id + ext;
        if (::unlinkat(dirfd, name.c_str(), 0) == 0) any = true;
        else if (errno != ENOENT) throw sys_error("unlink " + name);
    }
    return any;
}

// contains_icase - needle occurs in hay, ignoring ASCII case.
bool contains_icase(std::string_view hay, std::string_view needle) {
    return lower(hay).find(lower(needle)) != std::string::npos;
}

// any_contains - some string of list contains needle (case-insensitive).
bool any_contains(const std::vector<std::string>& list, std::string_view needle) {
    return std::any_of(list.begin(), list.end(), [&](const std::string& s) { return contains_icase(s, needle); });
}

} // namespace

// valid_quarantine_id - YYYYMMDDTHHMMSSZ-<1..32 alnum>-<8 lower hex>.
bool valid_quarantine_id(std::string_view id) noexcept {
    constexpr std::size_t kStamp = 16; // YYYYMMDDTHHMMSSZ
    if (id.size() < kStamp + 1 + 1 + 1 + 8 || id.size() > kStamp + 1 + kMaxQueueId + 1 + 8) return false;
    for (std::size_t i = 0; i < kStamp; ++i) {
        char c = id[i];
        bool ok = i == 8 ? c == 'T' : i == 15 ? c == 'Z' : (c >= '0' && c <= '9');
        if (!ok) return false;
    }
    if (id[kStamp] != '-' || id[id.size() - 9] != '-') return false;
    for (std::size_t i = kStamp + 1; i < id.size() - 9; ++i)
        if (!is_alnum(id[i])) return false;
    for (std::size_t i = id.size() - 8; i < id.size(); ++i) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

// release_marker - the header value is the ID itself.
std::string release_marker(std::string_view id) { return std::string(id); }

// quarantine_json - envelope data is not always UTF-8: replace, never fail.
std::string quarantine_json(const QuarantineEntry& e, int indent) {
    return sidecar_json(e).dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// body_digest - stream the message through the canonicaliser.
Digest body_digest(ByteSource& message) {
    message.rewind();
    BodyCanon canon;
    std::vector<char> buf(kChunk);
    for (std::size_t n; (n = message.read(buf)) > 0;) canon.feed({buf.data(), n});
    return canon.finish();
}

// QuarantineStore - keep the directory open for the store's lifetime.
QuarantineStore::QuarantineStore(std::string dir)
    : dir_(std::move(dir)), dirfd_(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (!dirfd_) throw sys_error("cannot open directory " + dir_);
}

// store - a Spool's content.
QuarantineEntry QuarantineStore::store(const Spool& message, QuarantineEntry meta) {
    auto reader = message.reader();
    return store(*reader, std::move(meta));
}

// store - message file, then sidecar, then the directory, all synced.
QuarantineEntry QuarantineStore::store(ByteSource& message, QuarantineEntry meta) {
    if (meta.time == 0) meta.time = now_seconds();
    meta.released.reset();
    Undo undo(dirfd_.get());
    TempFile eml(dirfd_.get());
    Sha256 whole;
    BodyCanon body;
    std::uint64_t size = 0;
    message.rewind();
    std::vector<char> buf(kChunk);
    for (std::size_t n; (n = message.read(buf)) > 0;) {
        std::string_view chunk(buf.data(), n);
        eml.write(chunk);
        whole.update(chunk);
        body.feed(chunk);
        size += n;
    }
    eml.finish();
    meta.size = size;
    meta.sha256 = to_hex(whole.finish());
    meta.body_sha256 = to_hex(body.finish());
    for (int attempt = 0;; ++attempt) {
        meta.id = make_id(meta.time, meta.queue_id);
        if (eml.commit(meta.id + ".eml", false)) break;
        if (attempt == 8) throw sys_error("no free ID", EEXIST);
    }
    undo.add(meta.id + ".eml");
    if (!write_sidecar(dirfd_.get(), meta, false)) throw sys_error(meta.id + ".json exists", EEXIST);
    undo.add(meta.id + ".json");
    fsync_fd(dirfd_.get(), "directory");
    undo.done();
    meta.disk_bytes = size + file_size_at(dirfd_.get(), meta.id + ".json");
    return meta;
}

// list - sidecars in name (= time) order; the time filter needs no read.
std::vector<QuarantineEntry> QuarantineStore::list(const QuarantineFilter& filter) const {
    std::vector<QuarantineEntry> out;
    const std::string since = filter.since > 0 ? stamp(filter.since) : std::string();
    for (const auto& id : scan_dir(dirfd_.get()).ids) {
        if (id.compare(0, since.size(), since) < 0) continue;
        auto e = read_entry(dirfd_.get(), id);
        if (!e || e->time < filter.since) continue;
        if (!filter.virus.empty() && !any_contains(e->viruses, filter.virus)) continue;
        if (!filter.recipient.empty() && !any_contains(e->recipients, filter.recipient)) continue;
        out.push_back(std::move(*e));
    }
    return out;
}

// find - one entry by ID.
std::optional<QuarantineEntry> QuarantineStore::find(std::string_view id) const {
    if (!valid_quarantine_id(id)) return std::nullopt;
    return read_entry(dirfd_.get(), std::string(id));
}

// open_message - only for entries that exist (have a sidecar).
std::unique_ptr<ByteSource> QuarantineStore::open_message(std::string_view id) const {
    if (!find(id)) return nullptr;
    const std::string name = std::string(id) + ".eml";
    UniqueFd fd(::openat(dirfd_.get(), name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        if (errno == ENOENT) return nullptr;
        throw sys_error("open " + name);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) throw sys_error("stat " + name);
    return std::make_unique<OwnedFileSource>(std::move(fd), static_cast<std::uint64_t>(st.st_size));
}

// read_message - the whole message (tests, small tools).
std::optional<std::string> QuarantineStore::read_message(std::string_view id) const {
    auto src = open_message(id);
    if (!src) return std::nullopt;
    std::string out;
    std::vector<char> buf(kChunk);
    for (std::size_t n; (n = src->read(buf)) > 0;) out.append(buf.data(), n);
    return out;
}

// export_message - stream the message to fd.
bool QuarantineStore::export_message(std::string_view id, int fd) const {
    auto src = open_message(id);
    if (!src) return false;
    std::vector<char> buf(kChunk);
    for (std::size_t n; (n = src->read(buf)) > 0;) write_all(fd, buf.data(), n, "export");
    return true;
}

// remove - both files, under the lock.
bool QuarantineStore::remove(std::string_view id) {
    if (!valid_quarantine_id(id)) return false;
    DirLock lock(dirfd_.get());
    if (!unlink_entry(dirfd_.get(), std::string(id))) return false;
    fsync_fd(dirfd_.get(), "directory");
    return true;
}

// mark_released - count one more release and remember where it went.
bool QuarantineStore::mark_released(std::string_view id, const std::vector<std::string>& to, std::int64_t now) {
    if (!valid_quarantine_id(id)) return false;
    DirLock lock(dirfd_.get());
    auto e = read_entry(dirfd_.get(), std::string(id));
    if (!e) return false;
    QuarantineRelease rel = e->released.value_or(QuarantineRelease{});
    rel.time = now ? now : now_seconds();
    rel.to = to;
    ++rel.count;
    e->released = rel;
    write_sidecar(dirfd_.get(), *e, true);
    fsync_fd(dirfd_.get(), "directory");
    return true;
}

// unmark_released - take back an unclaimed release.
bool QuarantineStore::unmark_released(std::string_view id) {
    if (!valid_quarantine_id(id)) return false;
    DirLock lock(dirfd_.get());
    auto e = read_entry(dirfd_.get(), std::string(id));
    if (!e || !e->released || e->released->count <= e->released->claimed) return false;
    if (--e->released->count == 0) e->released.reset();
    write_sidecar(dirfd_.get(), *e, true);
    fsync_fd(dirfd_.get(), "directory");
    return true;
}

// claim_release - consume one release when the body matches.
bool QuarantineStore::claim_release(std::string_view id, const Digest& body) {
    if (!valid_quarantine_id(id)) return false;
    DirLock lock(dirfd_.get());
    auto e = read_entry(dirfd_.get(), std::string(id));
    if (!e || !e->released || e->released->claimed >= e->released->count) return false;
    if (e->body_sha256.empty() || e->body_sha256 != to_hex(body)) return false;
    ++e->released->claimed;
    write_sidecar(dirfd_.get(), *e, true);
    fsync_fd(dirfd_.get(), "directory");
    return true;
}

// enforce - age first, then size, oldest first; crash leftovers go too.
QuarantineRemoved QuarantineStore::enforce(std::chrono::seconds retention, std::uint64_t max_size,
                                           std::int64_t now) {
    if (now == 0) now = now_seconds();
    QuarantineRemoved removed;
    DirLock lock(dirfd_.get());
    Names names = scan_dir(dirfd_.get());
    // Leftovers of a crash: judged by mtime, as their names carry no time
    // (temps) or the caller's time (orphans), and a store may be under way.
    auto stale = [&](const std::string& name) {
        struct stat st {};
        return ::fstatat(dirfd_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
               static_cast<std::int64_t>(st.st_mtime) < now - kStaleSeconds;
    };
    for (const auto& t : names.temps)
        if (stale(t)) ::unlinkat(dirfd_.get(), t.c_str(), 0);
    for (const auto& o : names.orphans)
        if (stale(o + ".eml")) ::unlinkat(dirfd_.get(), (o + ".eml").c_str(), 0);

    struct Item {
        std::string id;
        std::int64_t time;
        std::uint64_t bytes;
    };
    std::vector<Item> items;
    std::uint64_t total = 0;
    for (const auto& id : names.ids) {
        auto e = read_entry(dirfd_.get(), id);
        // A corrupt sidecar still occupies space; its ID carries its time.
        std::uint64_t bytes = e ? e->disk_bytes
                                : file_size_at(dirfd_.get(), id + ".json") + file_size_at(dirfd_.get(), id + ".eml");
        std::int64_t t = e ? e->time : id_time(id);
        items.push_back({id, t, bytes});
        total += bytes;
    }
    bool changed = false;
    auto drop = [&](const Item& it) {
        if (unlink_entry(dirfd_.get(), it.id)) {
            removed.ids.push_back(it.id);
            removed.bytes += it.bytes;
            changed = true;
        }
        total -= it.bytes;
    };
    std::size_t first = 0;
    if (retention.count() > 0) {
        const std::int64_t cutoff = now - static_cast<std::int64_t>(retention.count());
        std::vector<Item> kept;
        for (const auto& it : items) {
            if (it.time < cutoff) drop(it);
            else kept.push_back(it);
        }
        items = std::move(kept);
    }
    // items are in ID order, that is oldest first.
    while (max_size > 0 && total > max_size && first < items.size()) drop(items[first++]);
    if (changed) fsync_fd(dirfd_.get(), "directory");
    return removed;
}

// stats - sizes from stat(), without parsing any sidecar.
QuarantineStats QuarantineStore::stats() const {
    QuarantineStats s;
    for (const auto& id : scan_dir(dirfd_.get()).ids) {
        ++s.count;
        s.bytes += file_size_at(dirfd_.get(), id + ".json") + file_size_at(dirfd_.get(), id + ".eml");
    }
    return s;
}

} // namespace icapm
