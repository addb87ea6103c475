// NAME
//   test_quarantine.cpp - unit tests of the quarantine store and its CLI
// SUMMARY
//   Byte-exact store/find/list/export (NUL, bare CR, a spool on disk),
//   0600 modes, atomicity (no temp files; read-only directory, full disk
//   and a failing source leave nothing), ID validation, list filters,
//   enforce by age and size, the release bookkeeping (claim exactly once,
//   never for forged, unknown or changed messages), concurrent stores,
//   and `icap-milterctl quarantine` including release through a fake
//   sendmail script that records its argv and stdin.
#include "icap-milter/common/sha256.hpp"
#include "icap-milter/mime/spool.hpp"
#include "icap-milter/quarantine/store.hpp"
#include "../../src/tools/quarantine_cmd.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace icapm;

namespace {

// QTempDir - a fresh directory, removed with everything in it at the end.
struct QTempDir {
    std::string path;
    QTempDir() {
        char tmpl[] = "/tmp/icapm-quarantine-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~QTempDir() {
        ::chmod(path.c_str(), 0700);
        for (const auto& n : names()) ::unlink((path + "/" + n).c_str());
        ::rmdir(path.c_str());
    }
    // names - entries other than . and .., sorted.
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        if (DIR* d = ::opendir(path.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string n = e->d_name;
                if (n != "." && n != "..") out.push_back(n);
            }
            ::closedir(d);
        }
        std::sort(out.begin(), out.end());
        return out;
    }
    // entry_files - names other than the lock file.
    std::vector<std::string> entry_files() const {
        auto n = names();
        n.erase(std::remove(n.begin(), n.end(), ".lock"), n.end());
        return n;
    }
};

// spool_of - an in-memory spool holding text.
std::unique_ptr<Spool> spool_of(const std::string& text, std::size_t limit = 1u << 20,
                                const std::string& dir = "/tmp") {
    auto s = std::make_unique<Spool>(dir, limit);
    s->append(text);
    return s;
}

// meta_for - a typical infected entry.
QuarantineEntry meta_for(std::string qid, std::int64_t time = 0) {
    QuarantineEntry m;
    m.time = time;
    m.queue_id = std::move(qid);
    m.job_id = "42";
    m.client = "mx.example.net [192.0.2.7]";
    m.sender = "alice@example.net";
    m.recipients = {"bob@example.org", "carol@example.org"};
    m.verdicts = "1:clean 2:infected(Eicar)";
    m.viruses = {"Eicar-Test-Signature"};
    m.status = MessageStatus::Infected;
    m.action = Action::Reject;
    return m;
}

// file_mode - permission bits of a path.
unsigned file_mode(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

// slurp - a whole file.
std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// digest_of - body_digest() of a text.
Digest digest_of(const std::string& text) {
    ViewSource v(text);
    return body_digest(v);
}

const std::string kMessage = std::string("Received: from a by b\r\nSubject: test\r\nFrom: alice@example.net\r\n\r\n"
                                         "body with a NUL ") +
                             std::string(1, '\0') + " and a bare CR \r here\r\n\r\nlast line\r\n";

// FailingSource - yields some bytes, then an I/O error.
class FailingSource final : public ByteSource {
public:
    std::size_t read(std::span<char> out) override {
        if (sent_ >= 100000) throw std::system_error(EIO, std::generic_category(), "test source");
        std::size_t n = std::min<std::size_t>(out.size(), 4096);
        std::fill_n(out.data(), n, 'x');
        sent_ += n;
        return n;
    }
    void rewind() override { sent_ = 0; }
    std::uint64_t size() const override { return 1u << 30; }

private:
    std::size_t sent_ = 0;
};

} // namespace

TEST_CASE("quarantine: store, find, list and export are byte for byte") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    ::mode_t old = ::umask(0); // a lax umask must not widen the modes
    auto spool = spool_of(kMessage);
    QuarantineEntry e = q.store(*spool, meta_for("4ABC123DEF", 1767225600)); // 2026-01-01T00:00:00Z
    ::umask(old);

    CHECK(valid_quarantine_id(e.id));
    CHECK(e.id.starts_with("20260101T000000Z-4ABC123DEF-"));
    CHECK(e.size == kMessage.size());
    Sha256 h;
    h.update(kMessage);
    CHECK(e.sha256 == to_hex(h.finish()));
    CHECK(e.body_sha256 == to_hex(digest_of(kMessage)));
    CHECK_FALSE(e.released);

    // exactly the two files (and the lock, once something locked), 0600
    CHECK(dir.entry_files() == std::vector<std::string>{e.id + ".eml", e.id + ".json"});
    CHECK(file_mode(dir.path + "/" + e.id + ".eml") == 0600);
    CHECK(file_mode(dir.path + "/" + e.id + ".json") == 0600);
    CHECK(slurp(dir.path + "/" + e.id + ".eml") == kMessage);

    auto f = q.find(e.id);
    REQUIRE(f);
    CHECK(f->time == 1767225600);
    CHECK(f->queue_id == "4ABC123DEF");
    CHECK(f->job_id == "42");
    CHECK(f->client == "mx.example.net [192.0.2.7]");
    CHECK(f->sender == "alice@example.net");
    CHECK(f->recipients == std::vector<std::string>{"bob@example.org", "carol@example.org"});
    CHECK(f->verdicts == "1:clean 2:infected(Eicar)");
    CHECK(f->viruses == std::vector<std::string>{"Eicar-Test-Signature"});
    CHECK(f->status == MessageStatus::Infected);
    CHECK(f->action == Action::Reject);
    CHECK(f->size == kMessage.size());
    CHECK(f->sha256 == e.sha256);
    CHECK(f->disk_bytes > kMessage.size());
    // the sidecar carries the ISO time too
    CHECK(slurp(dir.path + "/" + e.id + ".json").find("\"time_iso\": \"2026-01-01T00:00:00Z\"") != std::string::npos);

    CHECK(q.read_message(e.id) == kMessage);
    auto all = q.list();
    REQUIRE(all.size() == 1);
    CHECK(all[0].id == e.id);

    // export to a file descriptor
    std::string out_path = dir.path + "/exported";
    {
        UniqueFd fd(::open(out_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        REQUIRE(fd);
        CHECK(q.export_message(e.id, fd.get()));
    }
    CHECK(slurp(out_path) == kMessage);
    ::unlink(out_path.c_str());

    auto s = q.stats();
    CHECK(s.count == 1);
    CHECK(s.bytes == f->disk_bytes);

    // a queue id that is not alphanumeric is reduced; none at all is "noqid"
    auto e2 = q.store(*spool, meta_for("../x y", 1767225600));
    CHECK(e2.id.starts_with("20260101T000000Z-xy-"));
    auto e3 = q.store(*spool, meta_for("", 1767225600));
    CHECK(e3.id.starts_with("20260101T000000Z-noqid-"));
    // time 0 means now
    auto e4 = q.store(*spool, meta_for("Q"));
    CHECK(std::abs(e4.time - static_cast<std::int64_t>(std::time(nullptr))) < 5);
}

TEST_CASE("quarantine: a spool that went to disk is stored exactly") {
    QTempDir dir, spool_dir;
    QuarantineStore q(dir.path);
    std::string big = "Subject: big\r\n\r\n";
    for (std::size_t i = 0; big.size() < 300000; ++i) big += static_cast<char>((i * 131 + (i >> 9)) & 0xff);
    Spool spool(spool_dir.path, 1024);
    for (std::size_t off = 0; off < big.size(); off += 7000) spool.append(std::string_view(big).substr(off, 7000));
    REQUIRE(spool.on_disk());
    auto e = q.store(spool, meta_for("BIG"));
    CHECK(e.size == big.size());
    CHECK(q.read_message(e.id) == big);
    auto src = q.open_message(e.id);
    REQUIRE(src);
    CHECK(src->size() == big.size());
}

TEST_CASE("quarantine: IDs are validated strictly") {
    CHECK(valid_quarantine_id("20260101T000000Z-4ABC123DEF-0123abcd"));
    CHECK(valid_quarantine_id("20260101T000000Z-noqid-ffffffff"));
    for (const char* bad : {"", "../x", "a/b", "..", "20260101T000000Z-4ABC/DEF-0123abcd",
                            "20260101T000000Z-../x-0123abcd", "20260101T000000Z--0123abcd",
                            "20260101T000000Z-q-0123ABCD", "20260101T000000Z-q-0123abc", "20260101X000000Z-q-0123abcd",
                            "2026010T1000000Z-q-0123abcd", "20260101T000000Z-q-0123abcd.json",
                            "20260101T000000Z-q-0123abcd/../../etc/passwd",
                            "20260101T000000Z-0123456789012345678901234567890123-0123abcd"}) {
        CAPTURE(bad);
        CHECK_FALSE(valid_quarantine_id(bad));
    }
    QTempDir dir;
    QuarantineStore q(dir.path);
    CHECK_FALSE(q.find("../x"));
    CHECK_FALSE(q.find("a/b"));
    CHECK_FALSE(q.find(""));
    CHECK_FALSE(q.read_message("../x"));
    CHECK(q.open_message("a/b") == nullptr);
    CHECK_FALSE(q.remove("../x"));
    CHECK_FALSE(q.mark_released("../x", {"a@b"}));
    CHECK_FALSE(q.claim_release("../x", Digest{}));
    // well-formed but absent
    CHECK_FALSE(q.find("20260101T000000Z-q-0123abcd"));
    CHECK_FALSE(q.remove("20260101T000000Z-q-0123abcd"));
}

TEST_CASE("quarantine: a read-only directory throws and leaves nothing") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    auto spool = spool_of(kMessage);
    REQUIRE(::chmod(dir.path.c_str(), 0555) == 0);
    // root ignores the mode bits: act as nobody for the attempt
    bool as_root = ::geteuid() == 0;
    if (as_root) REQUIRE(::seteuid(65534) == 0);
    int code = 0;
    try {
        q.store(*spool, meta_for("RO"));
    } catch (const std::system_error& e) {
        code = e.code().value();
    }
    if (as_root) REQUIRE(::seteuid(0) == 0);
    CHECK(code == EACCES);
    CHECK(dir.names().empty());
}

TEST_CASE("quarantine: a full disk (EFBIG) throws and leaves nothing") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    std::string big(64 * 1024, 'a');
    auto spool = spool_of("Subject: x\r\n\r\n" + big);
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    rlimit small = old;
    small.rlim_cur = 1000;
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
    int code = 0;
    try {
        q.store(*spool, meta_for("FULL"));
    } catch (const std::system_error& e) {
        code = e.code().value();
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    ::signal(SIGXFSZ, old_handler);
    CHECK(code == EFBIG);
    CHECK(dir.entry_files().empty());
}

TEST_CASE("quarantine: a source that fails midway leaves nothing") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    FailingSource src;
    CHECK_THROWS_AS(q.store(src, meta_for("FAIL")), std::system_error);
    CHECK(dir.entry_files().empty());
    CHECK(q.list().empty());
}

TEST_CASE("quarantine: list is sorted by time and filters") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    auto spool = spool_of(kMessage);
    auto m1 = meta_for("A", 1767225600); // 2026-01-01
    m1.viruses = {"Win.Trojan.Agent"};
    m1.recipients = {"dave@example.com"};
    auto m2 = meta_for("B", 1767312000); // 2026-01-02
    auto m3 = meta_for("C", 1767139200); // 2025-12-31
    m3.viruses = {"EICAR", "Other"};
    auto e1 = q.store(*spool, m1);
    auto e2 = q.store(*spool, m2);
    auto e3 = q.store(*spool, m3);

    auto ids = [](const std::vector<QuarantineEntry>& v) {
        std::vector<std::string> out;
        for (const auto& e : v) out.push_back(e.id);
        return out;
    };
    CHECK(ids(q.list()) == std::vector<std::string>{e3.id, e1.id, e2.id});
    CHECK(ids(q.list({1767225600, "", ""})) == std::vector<std::string>{e1.id, e2.id});
    CHECK(ids(q.list({1767225601, "", ""})) == std::vector<std::string>{e2.id});
    CHECK(ids(q.list({0, "trojan", ""})) == std::vector<std::string>{e1.id});
    CHECK(ids(q.list({0, "eicar", ""})) == std::vector<std::string>{e3.id, e2.id});
    CHECK(ids(q.list({0, "", "CAROL@"})) == std::vector<std::string>{e3.id, e2.id});
    CHECK(ids(q.list({0, "", "dave"})) == std::vector<std::string>{e1.id});
    CHECK(ids(q.list({0, "nothing", ""})).empty());

    // strays are ignored: a temp file, a corrupt sidecar, a message without sidecar
    std::ofstream(dir.path + "/.tmp-0011223344556677") << "partial";
    std::ofstream(dir.path + "/20260103T000000Z-X-00000000.json") << "{not json";
    std::ofstream(dir.path + "/20260104T000000Z-Y-00000000.eml") << "orphan";
    std::ofstream(dir.path + "/README") << "hello";
    CHECK(ids(q.list()) == std::vector<std::string>{e3.id, e1.id, e2.id});
}

TEST_CASE("quarantine: enforce deletes by age, then the oldest by size") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    const std::int64_t now = 1767225600;
    auto spool = spool_of(kMessage);
    std::vector<QuarantineEntry> e;
    for (int days : {40, 31, 29, 10, 1}) e.push_back(q.store(*spool, meta_for("Q", now - days * 86400)));
    CHECK(q.stats().count == 5);

    // nothing to do
    auto none = q.enforce(std::chrono::hours(24 * 60), 0, now);
    CHECK(none.ids.empty());
    CHECK(none.bytes == 0);

    auto r = q.enforce(std::chrono::hours(24 * 30), 0, now);
    CHECK(r.ids == std::vector<std::string>{e[0].id, e[1].id});
    CHECK(r.bytes == e[0].disk_bytes + e[1].disk_bytes);
    CHECK(q.stats().count == 3);
    CHECK_FALSE(q.find(e[0].id));
    CHECK(dir.entry_files().size() == 6);

    // size: keep at most two entries' worth
    auto per = e[2].disk_bytes;
    auto r2 = q.enforce(std::chrono::seconds(0), 2 * per + per / 2, now);
    CHECK(r2.ids == std::vector<std::string>{e[2].id});
    auto s = q.stats();
    CHECK(s.count == 2);
    CHECK(s.bytes <= 2 * per + per / 2);
    auto r3 = q.enforce(std::chrono::seconds(0), 1, now);
    CHECK(r3.ids == std::vector<std::string>{e[3].id, e[4].id});
    CHECK(q.stats().count == 0);
    CHECK(dir.entry_files().empty());
}

TEST_CASE("quarantine: enforce removes crash leftovers only when stale") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    std::ofstream(dir.path + "/.tmp-0011223344556677") << "partial";
    std::ofstream(dir.path + "/20260104T000000Z-Y-00000000.eml") << "orphan";
    const std::int64_t now = static_cast<std::int64_t>(std::time(nullptr));
    q.enforce(std::chrono::seconds(0), 0, now);
    CHECK(dir.entry_files().size() == 2); // fresh: a store may be under way
    auto r = q.enforce(std::chrono::seconds(0), 0, now + 7200);
    CHECK(r.ids.empty());
    CHECK(dir.entry_files().empty());
}

TEST_CASE("quarantine: body_digest ignores headers, line ends and trailing empty lines") {
    const std::string body = "line one\r\n\r\nline three\r\n";
    Digest d = digest_of("Subject: a\r\n\r\n" + body);
    CHECK(digest_of("Received: x\r\n\tfolded\r\nSubject: a\r\n\r\n" + body) == d);
    CHECK(digest_of("Subject: a\n\nline one\n\nline three\n") == d);
    CHECK(digest_of("Subject: a\n\nline one\n\nline three") == d);
    CHECK(digest_of("Subject: a\r\n\r\n" + body + "\r\n\r\n") == d);
    CHECK(digest_of("Subject: a\r\n\r\nline one\r\n\r\nline three!\r\n") != d);
    CHECK(digest_of("Subject: a\r\n\r\nline one\r\nline three\r\n") != d);
    // a bare CR is content, not a line end
    CHECK(digest_of("S: a\r\n\r\nx\ry\r\n") != digest_of("S: a\r\n\r\nx\r\ny\r\n"));
    CHECK(digest_of("S: a\r\n\r\nx\r\r\n") != digest_of("S: a\r\n\r\nx\r\n"));
    // the header block must end for a body to begin
    CHECK(digest_of("Subject: a\r\nline one\r\n") == digest_of("X: y\r\n\r\n"));
}

TEST_CASE("quarantine: claim_release is true exactly once per release of the same body") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    auto spool = spool_of(kMessage);
    auto e = q.store(*spool, meta_for("REL"));
    auto other = q.store(*spool, meta_for("OTHER"));
    // As the milter sees it coming back: marker and Received added in front.
    std::string again = std::string(kReleaseHeader) + ": " + release_marker(e.id) +
                        "\r\nReceived: by mx (Postfix)\r\n" + kMessage;
    Digest body = digest_of(again);
    CHECK(release_marker(e.id) == e.id);

    CHECK_FALSE(q.claim_release(e.id, body)); // not released yet: forged
    CHECK_FALSE(q.claim_release("20260101T000000Z-q-0123abcd", body)); // unknown
    REQUIRE(q.mark_released(e.id, {"bob@example.org"}, 1767225600));
    auto f = q.find(e.id);
    REQUIRE(f->released);
    CHECK(f->released->time == 1767225600);
    CHECK(f->released->to == std::vector<std::string>{"bob@example.org"});
    CHECK(f->released->count == 1);
    CHECK(f->released->claimed == 0);
    CHECK(file_mode(dir.path + "/" + e.id + ".json") == 0600);

    CHECK_FALSE(q.claim_release(e.id, digest_of("S: x\r\n\r\nchanged body\r\n"))); // mismatching hash
    CHECK_FALSE(q.claim_release(other.id, body)); // another, unreleased entry
    CHECK(q.claim_release(e.id, body));
    CHECK_FALSE(q.claim_release(e.id, body)); // already claimed
    CHECK(q.find(e.id)->released->claimed == 1);
    CHECK_FALSE(q.unmark_released(e.id)); // nothing unclaimed to take back

    // a second release allows a second pass
    REQUIRE(q.mark_released(e.id, {"carol@example.org"}));
    CHECK(q.find(e.id)->released->count == 2);
    CHECK(q.claim_release(e.id, body));
    CHECK_FALSE(q.claim_release(e.id, body));

    // a failed re-injection is taken back
    REQUIRE(q.mark_released(other.id, {"x@example.org"}));
    CHECK(q.unmark_released(other.id));
    CHECK_FALSE(q.find(other.id)->released);
    CHECK_FALSE(q.claim_release(other.id, body));
    CHECK(dir.entry_files().size() == 4); // no temp files left by the rewrites
}

TEST_CASE("quarantine: concurrent stores and claims from 4 threads") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    auto spool = spool_of(kMessage);
    constexpr int kThreads = 4, kEach = 25;
    std::vector<std::vector<std::string>> ids(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < kEach; ++i) ids[t].push_back(q.store(*spool, meta_for("SAME", 1767225600)).id);
        });
    for (auto& th : threads) th.join();
    std::set<std::string> unique;
    for (const auto& v : ids) unique.insert(v.begin(), v.end());
    CHECK(unique.size() == kThreads * kEach);
    CHECK(q.list().size() == kThreads * kEach);
    CHECK(dir.entry_files().size() == 2 * kThreads * kEach);

    // one release, four threads claiming it: exactly one wins
    const std::string id = *unique.begin();
    REQUIRE(q.mark_released(id, {"bob@example.org"}));
    Digest body = digest_of(kMessage);
    std::vector<int> wins(kThreads);
    threads.clear();
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10; ++i) wins[t] += q.claim_release(id, body) ? 1 : 0;
        });
    for (auto& th : threads) th.join();
    CHECK(wins[0] + wins[1] + wins[2] + wins[3] == 1);
}

TEST_CASE("quarantine: durations, dates and command splitting") {
    CHECK(parse_age("30d") == std::chrono::seconds(30 * 86400));
    CHECK(parse_age("12h") == std::chrono::seconds(12 * 3600));
    CHECK(parse_age("90m") == std::chrono::seconds(90 * 60));
    CHECK(parse_age("3600s") == std::chrono::seconds(3600));
    CHECK(parse_age("2w") == std::chrono::seconds(14 * 86400));
    CHECK(parse_age("45") == std::chrono::seconds(45));
    for (const char* bad : {"", "d", "-1d", "1x", "1 d", "1dd", "99999999999d"}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_age(bad));
    }
    const std::int64_t now = 1767225600;
    CHECK(parse_since("1d", now) == now - 86400);
    CHECK(parse_since("2026-01-01", now) == 1767225600);
    CHECK(parse_since("2026-01-01T01:02:03Z", now) == 1767225600 + 3723);
    CHECK(parse_since("2026-01-01 01:02", now) == 1767225600 + 3720);
    CHECK_FALSE(parse_since("yesterday", now));
    CHECK_FALSE(parse_since("2026-01-01junk", now));
    CHECK(split_command("  /usr/sbin/sendmail\t-G  -i ") ==
          std::vector<std::string>{"/usr/sbin/sendmail", "-G", "-i"});
    CHECK(split_command("").empty());
}

namespace {

// Cli - run `quarantine ARGS` against dir and keep the output.
struct Cli {
    explicit Cli(std::string d, std::string cmd = "/usr/sbin/sendmail -G -i")
        : dir(std::move(d)), sendmail(std::move(cmd)) {}
    std::string dir;
    std::string sendmail;
    std::string out, err;
    int operator()(std::vector<std::string> args, std::int64_t now = 1767225600) {
        std::ostringstream o, e;
        QuarantineSettings s;
        s.dir = dir;
        s.sendmail = sendmail;
        int rc = quarantine_command(args, s, o, e, now);
        out = o.str();
        err = e.str();
        return rc;
    }
};

// write_script - an executable file.
void write_script(const std::string& path, const std::string& text) {
    {
        std::ofstream f(path, std::ios::binary);
        f << text;
    }
    REQUIRE(::chmod(path.c_str(), 0700) == 0);
}

} // namespace

TEST_CASE("quarantine: icap-milterctl quarantine list, show, export, delete, purge") {
    QTempDir dir;
    QuarantineStore q(dir.path);
    std::string evil = "Subject: \x1b[31mred\x1b[0m\r\nX-Folded: a\r\n\tb\r\n\r\nbody\r\n";
    evil += std::string(1, '\0');
    auto spool = spool_of(evil);
    auto m = meta_for("A1", 1767225600 - 40 * 86400);
    m.sender = "";
    auto old = q.store(*spool, m);
    auto fresh = q.store(*spool, meta_for("B2", 1767225600 - 3600));
    Cli cli(dir.path);

    REQUIRE(cli({"list"}) == 0);
    CHECK(cli.out == old.id + " 2025-11-22T00:00:00Z <> bob@example.org,carol@example.org Eicar-Test-Signature " +
                         std::to_string(evil.size()) + " -\n" + fresh.id +
                         " 2025-12-31T23:00:00Z alice@example.net bob@example.org,carol@example.org "
                         "Eicar-Test-Signature " +
                         std::to_string(evil.size()) + " -\n");
    REQUIRE(cli({"list", "--since", "2d"}) == 0);
    CHECK(cli.out.starts_with(fresh.id + " "));
    CHECK(cli.out.find(old.id) == std::string::npos);
    REQUIRE(cli({"list", "--since", "2025-12-01", "--virus", "eicar", "--rcpt", "bob"}) == 0);
    CHECK(cli.out.starts_with(fresh.id + " "));
    REQUIRE(cli({"list", "--json"}) == 0);
    CHECK(cli.out.starts_with("[\n {"));
    CHECK(cli.out.find("\"id\":\"" + old.id + "\"") != std::string::npos);
    CHECK(cli.out.find("\"id\":\"" + fresh.id + "\"") != std::string::npos);
    CHECK(cli({"list", "--since", "someday"}) == 2);

    REQUIRE(cli({"show", fresh.id}) == 0);
    CHECK(cli.out.find("id:          " + fresh.id) != std::string::npos);
    CHECK(cli.out.find("viruses:     Eicar-Test-Signature") != std::string::npos);
    CHECK(cli.out.find("released:    no") != std::string::npos);
    CHECK(cli.out.find("  Subject: \\x1B[31mred\\x1B[0m\n") != std::string::npos);
    CHECK(cli.out.find("  X-Folded: a\n   b\n") != std::string::npos);
    CHECK(cli.out.find('\x1b') == std::string::npos);
    CHECK(cli.out.ends_with("  X-Folded: a\n   b\n")); // the header block only

    REQUIRE(cli({"export", fresh.id}) == 0);
    CHECK(cli.out == evil);

    // usage and lookup errors
    CHECK(cli({"show", "../x"}) == 2);
    CHECK(cli({"export", "a/b"}) == 2);
    CHECK(cli({"delete", ""}) == 2);
    CHECK(cli({"show"}) == 2);
    CHECK(cli({"frobnicate"}) == 2);
    CHECK(cli({"list", "--bogus"}) == 2);
    CHECK(cli({"list", "extra"}) == 2);
    CHECK(cli({"export", fresh.id, "--json"}) == 2);
    CHECK(cli({"purge"}) == 2);
    CHECK(cli({}) == 2);
    CHECK(cli({"show", "20260101T000000Z-q-0123abcd"}) == 1);
    CHECK(cli({"delete", "20260101T000000Z-q-0123abcd"}) == 1);
    CHECK(cli({"list", "--dir", dir.path + "/missing"}) == 3);
    Cli nodir("");
    CHECK(nodir({"list"}) == 3);
    CHECK(nodir.err.find("--dir") != std::string::npos);

    REQUIRE(cli({"purge", "--older-than", "30d"}) == 0);
    CHECK(cli.out == "deleted " + old.id + "\npurged 1 message(s), " + std::to_string(old.disk_bytes) + " bytes\n");
    CHECK_FALSE(q.find(old.id));
    REQUIRE(cli({"delete", fresh.id}) == 0);
    CHECK(cli.out == "deleted " + fresh.id + "\n");
    CHECK(q.list().empty());
    CHECK(cli({"delete", fresh.id}) == 1);
}

TEST_CASE("quarantine: icap-milterctl quarantine release runs sendmail without a shell") {
    QTempDir dir, bin;
    const std::string script = bin.path + "/sendmail";
    write_script(script, "#!/bin/sh\n"
                         "d=$(dirname \"$0\")\n"
                         "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$d/argv\"\n"
                         "cat > \"$d/stdin\"\n"
                         "if [ -e \"$d/fail\" ]; then exit 75; fi\n"
                         "exit 0\n");
    QuarantineStore q(dir.path);
    auto spool = spool_of(kMessage);
    auto m = meta_for("REL1");
    m.sender = "<alice@example.net>";
    m.recipients = {"<bob@example.org>", "-oQ/tmp/evil@example.org"};
    auto e = q.store(*spool, m);
    Cli cli(dir.path, script + " -G  -i");

    REQUIRE(cli({"release", e.id}) == 0);
    CHECK(cli.out == "released " + e.id + " to bob@example.org, -oQ/tmp/evil@example.org\n");
    CHECK(slurp(bin.path + "/argv") ==
          "-G\n-i\n-f\nalice@example.net\n--\nbob@example.org\n-oQ/tmp/evil@example.org\n");
    const std::string fed = slurp(bin.path + "/stdin");
    CHECK(fed == "X-Icap-Milter-Released: " + e.id + "\r\n" + kMessage);
    auto f = q.find(e.id);
    REQUIRE(f->released);
    CHECK(f->released->count == 1);
    CHECK(f->released->to == std::vector<std::string>{"bob@example.org", "-oQ/tmp/evil@example.org"});
    REQUIRE(cli({"show", e.id}) == 0);
    CHECK(cli.out.find("released:    2026-01-01T00:00:00Z to bob@example.org") != std::string::npos);
    REQUIRE(cli({"list"}) == 0);
    CHECK(cli.out.ends_with(" released:1\n"));
    // what the milter then does with the message that comes back
    CHECK(q.claim_release(e.id, digest_of("Received: by mx\r\n" + fed)));
    CHECK_FALSE(q.claim_release(e.id, digest_of("Received: by mx\r\n" + fed)));

    // --to overrides, the null sender goes as <>, LF messages get an LF marker
    auto lf = spool_of("Subject: lf\n\nbody\n");
    auto m2 = meta_for("REL2");
    m2.sender = "";
    auto e2 = q.store(*lf, m2);
    REQUIRE(cli({"release", e2.id, "--to", "admin@example.org", "--to", "<sec@example.org>"}) == 0);
    CHECK(slurp(bin.path + "/argv") == "-G\n-i\n-f\n<>\n--\nadmin@example.org\nsec@example.org\n");
    CHECK(slurp(bin.path + "/stdin") == "X-Icap-Milter-Released: " + e2.id + "\nSubject: lf\n\nbody\n");

    // a failing sendmail: exit 1 and the release is taken back
    std::ofstream(bin.path + "/fail") << "";
    auto e3 = q.store(*spool, meta_for("REL3"));
    CHECK(cli({"release", e3.id}) == 1);
    CHECK(cli.err.find("exited with status 75") != std::string::npos);
    CHECK_FALSE(q.find(e3.id)->released);
    ::unlink((bin.path + "/fail").c_str());

    // refused before anything runs
    CHECK(cli({"release", e3.id, "--to", "a b@example.org"}) == 2);
    CHECK(cli({"release", "20260101T000000Z-q-0123abcd"}) == 1);
    Cli relative(dir.path, "sendmail -i");
    CHECK(relative({"release", e3.id}) == 3);
    Cli missing(dir.path, bin.path + "/no-such-sendmail");
    CHECK(missing({"release", e3.id}) == 1);
    CHECK_FALSE(q.find(e3.id)->released);
    auto norcpt = meta_for("REL4");
    norcpt.recipients.clear();
    auto e4 = q.store(*spool, norcpt);
    CHECK(cli({"release", e4.id}) == 1);
    CHECK(cli.err.find("--to") != std::string::npos);
}
