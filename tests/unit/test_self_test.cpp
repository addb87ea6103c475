// NAME
//   test_self_test.cpp - scanner self-test: canaries, sniffing, trust, pool
// SUMMARY
//   The canary builders are checked byte by byte and by Python's zipfile
//   (CRC and structure); the trust rules on results made by hand; the
//   pool's acquire() on injected results (NotTrusted with its reason,
//   Error for a server that missed plain EICAR); and the whole loop
//   against a scripted ICAP server that flags plain EICAR only up to
//   100 KB and answers 204 to zips, PDFs and bigger objects, as a
//   c-icap with a short ScanFileTypes and a small MaxObjectSize does.
#include "icap-milter/scan/self_test.hpp"

#include "icap-milter/common/lock_guarded.hpp"
#include "icap-milter/config/config.hpp"
#include "icap-milter/scan/content_class.hpp"
#include "icap-milter/scan/pool.hpp"
#include "icap-milter/scan/scanner.hpp"
#include "icap-milter/scan/server_spec.hpp"
#include "icap-milter/stats/counters.hpp"
#include "icap_script.hpp"

#include <doctest/doctest.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

using namespace icapm;
using namespace icapm_test;
using namespace std::chrono_literals;

namespace {

// read_all - every byte of a source.
std::string read_all(ByteSource& src) {
    std::string out;
    char buf[7000]; // not a multiple of 8: exercises the generator's block edges
    while (std::size_t n = src.read(std::span<char>(buf, sizeof buf))) out.append(buf, n);
    return out;
}

// u32 - a little-endian field.
std::uint32_t u32(const std::string& s, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3])) << 24;
}

// python_zip_check - Python's zipfile: testzip() (every CRC) and the
// entry names with sizes, or "error: ..." output.
std::string python_zip_check(const std::string& zip) {
    const std::filesystem::path p = std::filesystem::temp_directory_path() / "icapm-selftest-test.zip";
    {
        std::ofstream f(p, std::ios::binary);
        f.write(zip.data(), static_cast<std::streamsize>(zip.size()));
    }
    const std::string cmd = "python3 -c \"import zipfile,sys\nz=zipfile.ZipFile(sys.argv[1])\nbad=z.testzip()\n"
                            "print('bad' if bad else 'ok', ' '.join('%s:%d' % (i.filename, i.file_size) for i in "
                            "z.infolist()), z.read(z.infolist()[-1]).decode())\" " +
                            p.string() + " 2>&1";
    std::string out;
    if (FILE* f = ::popen(cmd.c_str(), "r")) {
        char buf[512];
        while (std::fgets(buf, sizeof buf, f)) out += buf;
        ::pclose(f);
    }
    std::filesystem::remove(p);
    return out;
}

// spec_of - a ServerSpec from config text.
ServerSpec spec_of(const std::string& text) {
    std::string error;
    auto s = parse_server_spec(text, &error);
    REQUIRE(s);
    return *s;
}

// result_of - a complete self-test result made by hand.
SelfTestResult result_of(bool eicar, bool zip, bool pdf, std::uint64_t large_flagged, std::uint64_t large_max) {
    SelfTestResult r;
    r.complete = true;
    r.eicar = eicar;
    r.zip = zip;
    r.pdf = pdf;
    r.large_run = true;
    r.large_flagged = large_flagged;
    r.large_max = large_max;
    settle_trust(r);
    return r;
}

// eicar_up_to - a scripted scanner: flags EICAR in a body of at most
// limit bytes that is not a zip or PDF; answers 204 otherwise.
std::function<std::string(const Request&)> eicar_up_to(std::size_t limit, std::atomic<int>* canaries) {
    return [limit, canaries](const Request& r) {
        if (r.encap.find("icap-milter-selftest-") != std::string::npos) ++*canaries;
        const bool zip = r.body.rfind("PK\x03\x04", 0) == 0;
        const bool pdf = r.body.rfind("%PDF-", 0) == 0;
        if (!zip && !pdf && r.body.size() <= limit && r.body.find(kEicar) != std::string::npos)
            return infected_reply("Test.EICAR");
        return kReply204;
    };
}

// task_of - a ScanTask over bytes, of a given class.
ScanTask task_of(const std::string& text, ContentClass kind = ContentClass::Other) {
    auto spool = std::make_shared<Spool>("/tmp", 1 << 20);
    spool->append(text);
    ScanTask t{"part.bin", "Job-S.1", spool};
    t.kind = kind;
    return t;
}

// scanner_config - one scripted server, short timeouts, the self-test on
// with a large canary of max_scan_size bytes (halved down to an eighth).
std::shared_ptr<const Config> scanner_config(const ScriptServer& s, std::uint64_t max_scan_size) {
    auto c = std::make_shared<Config>();
    c->scanner_self_test = true;
    c->max_scan_size = max_scan_size;
    c->icap_servers = {"icap://127.0.0.1:" + std::to_string(s.port()) + "/avscan"};
    c->scan_threads = 2;
    c->connect_timeout = 1000ms;
    c->io_timeout = 2000ms;
    c->scan_timeout = 5000ms;
    c->circuit_breaker_failures = 100;
    c->circuit_breaker_probe_interval = 1000ms;
    return c;
}

} // namespace

TEST_CASE("self-test: CRC-32 and the EICAR zip canary") {
    CHECK(crc32("123456789") == 0xCBF43926u); // the standard check value
    CHECK(crc32("") == 0u);
    CHECK(crc32("6789", crc32("12345")) == 0xCBF43926u);
    CHECK(kEicar.size() == 68);
    const std::string z = eicar_zip();
    REQUIRE(z.size() == 30 + 9 + 68 + 46 + 9 + 22);
    CHECK(z.rfind("PK\x03\x04", 0) == 0);
    CHECK(u32(z, 14) == crc32(kEicar));          // local header CRC
    CHECK(u32(z, 18) == 68);                     // stored: compressed = uncompressed
    CHECK(z.substr(30, 9) == "eicar.com");
    CHECK(z.substr(39, 68) == kEicar);
    CHECK(z.substr(z.size() - 22, 4) == "PK\x05\x06");
    CHECK(u32(z, z.size() - 6) == 39 + 68);      // central directory offset
    const std::string py = python_zip_check(z);
    INFO(py);
    CHECK(py.rfind("ok eicar.com:68 " + std::string(kEicar), 0) == 0);
    CHECK(sniff_class(z) == ContentClass::Archive);
}

TEST_CASE("self-test: the PDF canary looks like a PDF and carries EICAR") {
    const std::string pdf = eicar_pdf();
    CHECK(pdf.rfind("%PDF-1.4\n", 0) == 0);
    CHECK(pdf.find("stream\n" + std::string(kEicar) + "\nendstream") != std::string::npos);
    CHECK(pdf.ends_with("%%EOF\n"));
    // startxref points at the xref table, and every entry at its object.
    const auto sx = pdf.rfind("startxref\n");
    REQUIRE(sx != std::string::npos);
    const std::size_t xref = std::stoul(pdf.substr(sx + 10));
    REQUIRE(pdf.compare(xref, 5, "xref\n") == 0);
    for (int obj = 1; obj <= 4; ++obj) {
        const std::size_t entry = xref + 5 + 4 + 20 * static_cast<std::size_t>(obj); // "0 5\n", 20-byte rows
        const std::size_t off = std::stoul(pdf.substr(entry, 10));
        CAPTURE(obj);
        CHECK(pdf.compare(off, 8, std::to_string(obj) + " 0 obj\n") == 0);
    }
    CHECK(sniff_class(pdf) == ContentClass::Document);
    CHECK(small_canary_max() == std::max(pdf.size(), eicar_zip().size()));
}

TEST_CASE("self-test: the large canary is streamed, sized exactly and ends with EICAR") {
    LargeCanary raw(1 << 20, false);
    CHECK(raw.size() == (1u << 20));
    CHECK_FALSE(raw.zipped());
    const std::string a = read_all(raw);
    CHECK(a.size() == (1u << 20));
    CHECK(a.ends_with(kEicar));
    CHECK(a.find(kEicar) == a.size() - 68);
    CHECK(a.substr(0, 4096).find(std::string(64, '\0')) == std::string::npos); // not zeros
    raw.rewind();
    CHECK(read_all(raw) == a); // rewind gives the same bytes (a retry resends them)
    CHECK(sniff_class(a) == ContentClass::Other);

    LargeCanary zipped(300000, true);
    CHECK(zipped.zipped());
    const std::string z = read_all(zipped);
    CHECK(z.size() == 300000);
    CHECK(sniff_class(z) == ContentClass::Archive);
    const std::string py = python_zip_check(z);
    INFO(py);
    CHECK(py.find("ok icap-milter-selftest-padding.bin:") == 0);
    CHECK(py.find(" eicar.com:68 " + std::string(kEicar)) != std::string::npos);

    std::atomic<bool> stop{true};
    LargeCanary stopped(1 << 20, false, &stop);
    char buf[16];
    CHECK_THROWS_AS(stopped.read(std::span<char>(buf, sizeof buf)), std::system_error);
}

TEST_CASE("self-test: content classes are sniffed from the first bytes") {
    using namespace std::string_literals;
    CHECK(sniff_class("PK\x03\x04rest"s) == ContentClass::Archive);
    CHECK(sniff_class("Rar!\x1a\x07\x00"s) == ContentClass::Archive);
    CHECK(sniff_class("7z\xbc\xaf\x27\x1c"s) == ContentClass::Archive);
    CHECK(sniff_class("\x1f\x8b\x08"s) == ContentClass::Archive);
    CHECK(sniff_class("BZh91AY"s) == ContentClass::Archive);
    CHECK(sniff_class(std::string(257, 'x') + "ustar") == ContentClass::Archive);
    CHECK(sniff_class("%PDF-1.7\n"s) == ContentClass::Document);
    CHECK(sniff_class(std::string(500, ' ') + "%PDF-1.7") == ContentClass::Document); // readers look 1 KB in
    CHECK(sniff_class(std::string(2000, ' ') + "%PDF-1.7") == ContentClass::Other);
    CHECK(sniff_class("%!PS-Adobe-3.0"s) == ContentClass::Document);
    CHECK(sniff_class("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"s) == ContentClass::Other); // Office: no canary
    CHECK(sniff_class("Hello, world"s) == ContentClass::Other);
    CHECK(sniff_class(""s) == ContentClass::Other);
    CHECK(sniff_class("PK"s) == ContentClass::Other);
    MemSource src("%PDF-1.4 ...");
    CHECK(sniff_class(src) == ContentClass::Document);
    CHECK(read_all(src) == "%PDF-1.4 ..."); // rewound
}

TEST_CASE("self-test: trust follows what the server flagged") {
    const auto stock = result_of(true, true, false, 3276800, 26214400);
    CHECK(stock.trusted_size == 3276800);
    CHECK(trusts(stock, {3000000, ContentClass::Other}));
    CHECK(trusts(stock, {3276800, ContentClass::Archive}));
    CHECK_FALSE(trusts(stock, {3276801, ContentClass::Other}));
    CHECK_FALSE(trusts(stock, {300, ContentClass::Document}));
    CHECK(stock.misses() == std::vector<std::string>{"pdf (documents)", "large objects over 3276800 bytes"});
    const std::string fix = cicap_fix(stock);
    CHECK(fix.find("DOCUMENT") != std::string::npos);
    CHECK(fix.find("MaxObjectSize") != std::string::npos);
    CHECK(fix.find("sizelimit=off") != std::string::npos);
    CHECK(fix.find("SendPercentData 0") != std::string::npos);

    const auto blind = result_of(false, false, false, 0, 26214400);
    CHECK(blind.trusted_size == 0);
    CHECK_FALSE(trusts(blind, {10, ContentClass::Other}));
    CHECK(blind.summary().find("missed the EICAR test file") != std::string::npos);

    const auto good = result_of(true, true, true, 26214400, 26214400);
    CHECK(good.misses().empty());
    CHECK(cicap_fix(good).empty());
    CHECK(trusts(good, {26214400, ContentClass::Document}));

    // Nothing flagged at any size: only parts as small as the small canaries.
    const auto small_only = result_of(true, true, true, 0, 26214400);
    CHECK(small_only.trusted_size == small_canary_max());
    CHECK(trusts(small_only, {100, ContentClass::Other}));
    CHECK_FALSE(trusts(small_only, {100000, ContentClass::Other}));

    // A small re-test (new ISTag) keeps the large canary's finding.
    SelfTestResult again = result_of(true, true, true, 0, 0);
    again.large_run = false;
    keep_large(again, stock);
    CHECK(again.trusted_size == 3276800);
    SelfTestResult incomplete;
    CHECK_FALSE(trusts(incomplete, {1, ContentClass::Other}));
}

TEST_CASE("pool: acquire lends only servers trusted with the part, and says why not") {
    QuietLog quiet;
    PoolSettings ps;
    ps.self_test = SelfTestSettings{true, 26214400, 1 << 20};
    // Two servers that accept and never answer: their own tests stay
    // pending for a while, and results are injected.
    ps.probe_interval = 3600s;
    ScriptServer silent([](Peer& p, int) { p.wait_peer_close(3000ms); });
    const std::string at = "icap://127.0.0.1:" + std::to_string(silent.port());
    ServerPool pool({spec_of(at + "/stock"), spec_of(at + "/good")}, nullptr, fast(1000ms), ps);
    pool.record_self_test(0, result_of(true, true, false, 3276800, 26214400), true);
    std::string why;
    NoServer kind;
    // Server 1 has no result yet: a part only it could take waits for it.
    auto start = SteadyClock::now();
    CHECK_FALSE(pool.acquire({}, {300, ContentClass::Document}, SteadyClock::now() + 200ms, &kind, &why));
    CHECK(SteadyClock::now() - start >= 150ms);
    CHECK(kind == NoServer::AllAtCap);
    CHECK(why.find("self-test not finished") != std::string::npos);

    pool.record_self_test(1, result_of(true, true, true, 26214400, 26214400), true);
    for (int i = 0; i < 4; ++i) {
        auto l = pool.acquire({}, {300, ContentClass::Document}, SteadyClock::now() + 1s, &kind, &why);
        REQUIRE(l);
        CHECK(l->server() == 1); // the stock one missed the PDF canary
    }
    auto big = pool.acquire({}, {7340032, ContentClass::Other}, SteadyClock::now() + 1s, &kind, &why);
    REQUIRE(big);
    CHECK(big->server() == 1);

    // Only the stock server left: size and class limits give NotTrusted.
    pool.record_self_test(1, result_of(false, false, false, 0, 26214400), true);
    const auto before = counters().not_trusted.load();
    CHECK_FALSE(pool.acquire({}, {7340032, ContentClass::Other}, SteadyClock::now() + 1s, &kind, &why));
    CHECK(kind == NoServer::NotTrusted);
    CHECK(why == "no scanner proved it scans parts of 7340032 bytes (largest canary flagged: 3276800)");
    CHECK_FALSE(pool.acquire({}, {300, ContentClass::Document}, SteadyClock::now() + 1s, &kind, &why));
    CHECK(kind == NoServer::NotTrusted);
    CHECK(why == "no scanner proved it scans documents (PDF, PostScript) (" + at +
                     "/stock missed the PDF canary)");
    CHECK(counters().not_trusted.load() == before + 2);
    auto small = pool.acquire({}, {3000000, ContentClass::Archive}, SteadyClock::now() + 1s, &kind, &why);
    REQUIRE(small);
    CHECK(small->server() == 0);
    CHECK_FALSE(pool.status()[1].gets_mail);
    CHECK(pool.status()[0].misses.size() == 2);

    // Neither detects plain EICAR: no mail at all, OnFail (not Unscanned).
    pool.record_self_test(0, result_of(false, true, true, 0, 26214400), true);
    CHECK_FALSE(pool.acquire({}, {10, ContentClass::Other}, SteadyClock::now() + 1s, &kind, &why));
    CHECK(kind == NoServer::NoneUp);
    CHECK(why.find("did not detect the EICAR test file") != std::string::npos);
}

TEST_CASE("self-test: a scanner that 204s zips, PDFs and big objects is trusted only with what it flagged") {
    QuietLog quiet;
    Recorder rec;
    std::atomic<int> canaries{0};
    ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(), eicar_up_to(100000, &canaries)); });
    Scanner scanner(scanner_config(srv, 512 * 1024));
    // Mail waits for the self-test: the first scan already sees its result.
    auto v = scanner.scan({task_of(random_bytes(10000)), task_of(random_bytes(80000)),
                           task_of(eicar_zip(), ContentClass::Archive), task_of("%PDF-1.4 x", ContentClass::Document),
                           task_of("EICAR? " + std::string(kEicar))},
                          [] {});
    REQUIRE(v.size() == 5);
    CHECK(v[0].kind == VerdictKind::Clean);
    CHECK(v[1].kind == VerdictKind::Unscannable);
    CHECK(v[1].reason == "no scanner proved it scans parts of 80000 bytes (largest canary flagged: 65536)");
    CHECK(v[2].kind == VerdictKind::Unscannable);
    CHECK(v[2].reason.find("archives") != std::string::npos);
    CHECK(v[3].kind == VerdictKind::Unscannable);
    CHECK(v[3].reason.find("documents") != std::string::npos);
    CHECK(v[4].kind == VerdictKind::Infected);
    // eicar, zip, pdf, then 512K, 256K, 128K missed and 64K flagged.
    CHECK(canaries == 7);
    auto st = scanner.servers();
    REQUIRE(st.size() == 1);
    CHECK(st[0].health == Health::Warnings);
    CHECK(st[0].trusted_size == 65536);
    CHECK(st[0].gets_mail);
    CHECK(st[0].misses == std::vector<std::string>{"zip (archives)", "pdf (documents)",
                                                  "large objects over 65536 bytes"});
    CHECK(st[0].canaries.size() == 7);
    CHECK(scanner.health() == Health::Warnings);
    CHECK(counters().scanner_health().self_test.find("misses zip (archives)") != std::string::npos);
    CHECK(counters().render().find("ScannerSelfTest: " + st[0].name + ": misses") != std::string::npos);
}

TEST_CASE("self-test: a scanner that misses plain EICAR gets no mail: OnFail, never Clean") {
    QuietLog quiet;
    Recorder rec;
    ScriptServer srv([&](Peer& p, int) { serve(p, rec, options_reply(), [](const Request&) { return kReply204; }); });
    Scanner scanner(scanner_config(srv, 256 * 1024));
    auto v = scanner.scan({task_of("hello"), task_of(std::string(kEicar))}, [] {});
    REQUIRE(v.size() == 2);
    for (const auto& x : v) {
        CHECK(x.kind == VerdictKind::Error);
        CHECK(x.reason.find("did not detect the EICAR test file") != std::string::npos);
    }
    // Only canaries reached it: no mail, and no large canary. (Counting
    // RESPMODs was flaky under ASan: a health re-test may add canaries.)
    {
        std::lock_guard lock(rec.mu);
        CHECK(rec.respmods >= 3);
        for (const auto& r : rec.requests) {
            if (r.method() != "RESPMOD") continue;
            CHECK(r.encap.find("icap-milter-selftest-") != std::string::npos);
            CHECK(r.encap.find("selftest-large") == std::string::npos);
            CHECK(r.body.find("hello") == std::string::npos);
        }
    }
    CHECK(scanner.health() == Health::Error);
    CHECK_FALSE(scanner.servers()[0].gets_mail);
    CHECK(scanner.servers()[0].fix.find("ScanFileTypes") != std::string::npos);
}

TEST_CASE("self-test: an unreachable scanner stays untested, trips the breaker, and mail gets OnFail") {
    QuietLog quiet;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    PoolSettings ps;
    ps.self_test = SelfTestSettings{true, 256 * 1024, 64 * 1024};
    ServerPool pool({spec_of("icap://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/avscan")}, nullptr, fast(),
                    ps);
    std::string why;
    NoServer kind;
    // Mail waits while the test is retried (0.5 s, 1 s, ...); each failed
    // attempt counts for the breaker, which opens after three: OnFail then.
    const auto start = SteadyClock::now();
    CHECK_FALSE(pool.acquire({}, {10, ContentClass::Other}, SteadyClock::now() + 20s, &kind, &why));
    CHECK(SteadyClock::now() - start < 5s);
    CHECK(kind == NoServer::NoneUp);
    CHECK(why == "no scanner is up");
    CHECK(pool.status()[0].down);
    CHECK(pool.status()[0].self_test.find("not done") == 0);
    CHECK_FALSE(pool.status()[0].gets_mail);
}

TEST_CASE("self-test: a new ISTag sends the small canaries again and keeps the large result") {
    QuietLog quiet;
    Recorder rec;
    std::atomic<int> canaries{0};
    std::atomic<int> tag{1};
    auto judge = eicar_up_to(100000, &canaries);
    ScriptServer srv([&](Peer& p, int) {
        serve(p, rec, options_reply(), [&](const Request& r) {
            std::string reply = judge(r);
            const std::string now = "SCRIPT-" + std::to_string(tag.load());
            reply.replace(reply.find("SCRIPT-1"), 8, now); // the definitions the reply claims
            return reply;
        });
    });
    PoolSettings ps;
    ps.self_test = SelfTestSettings{true, 128 * 1024, 64 * 1024};
    ServerPool pool({spec_of("icap://127.0.0.1:" + std::to_string(srv.port()) + "/avscan")}, nullptr, fast(), ps);
    for (int i = 0; i < 200 && !pool.self_test_result(0); ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(pool.self_test_result(0));
    CHECK(canaries == 5); // eicar, zip, pdf, 128K missed, 64K flagged
    CHECK(pool.self_test_result(0)->trusted_size == 65536);
    CHECK(pool.status()[0].istag == "SCRIPT-1");
    std::this_thread::sleep_for(300ms);
    CHECK(canaries == 5); // nothing more while the ISTag stays

    tag = 2;
    pool.report_success(0, "SCRIPT-2"); // a scan reply shows new definitions
    for (int i = 0; i < 200 && canaries < 8; ++i) std::this_thread::sleep_for(10ms);
    std::this_thread::sleep_for(300ms);
    CHECK(canaries == 8); // the three small ones again, not the large one
    auto r = pool.self_test_result(0);
    REQUIRE(r);
    CHECK(r->istag == "SCRIPT-2");
    CHECK(r->trusted_size == 65536); // the large canary's finding is kept
    CHECK(r->canaries.size() == 3);
}

TEST_CASE("self-test: a server that missed plain EICAR is tested again at each health round") {
    QuietLog quiet;
    Recorder rec;
    std::atomic<bool> fixed{false};
    std::atomic<int> canaries{0};
    auto judge = eicar_up_to(1 << 20, &canaries);
    ScriptServer srv([&](Peer& p, int) {
        serve(p, rec, options_reply(), [&](const Request& r) { return fixed ? judge(r) : kReply204; });
    });
    PoolSettings ps;
    ps.self_test = SelfTestSettings{true, 128 * 1024, 64 * 1024};
    ps.health_interval = 60000ms;
    ServerPool pool({spec_of("icap://127.0.0.1:" + std::to_string(srv.port()) + "/avscan")}, nullptr, fast(), ps);
    for (int i = 0; i < 200 && !pool.self_test_result(0); ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(pool.self_test_result(0));
    CHECK_FALSE(pool.status()[0].gets_mail);
    CHECK(pool.status()[0].health == Health::Error);
    fixed = true; // the admin fixes ScanFileTypes and restarts c-icap: same ISTag
    const auto t0 = SteadyClock::now();
    pool.maintain(t0);                       // first health round: due again
    for (int i = 0; i < 300 && !pool.status()[0].gets_mail; ++i) std::this_thread::sleep_for(10ms);
    CHECK(pool.status()[0].gets_mail);
    CHECK(pool.self_test_result(0)->trusted_size == 128 * 1024); // a full test: the large canary too
    const int before = rec.respmods;
    pool.maintain(t0 + 61s); // a passed server is not tested again
    std::this_thread::sleep_for(300ms);
    CHECK(rec.respmods == before);
}

TEST_CASE("lock_guarded: the value is reached only through a locked handle") {
    LockGuarded<std::vector<int>> guarded;
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) guarded.lock()->push_back(i);
        });
    for (auto& t : threads) t.join();
    CHECK(guarded.lock()->size() == 4000);
    const auto& read_only = guarded;
    CHECK((*read_only.lock()).size() == 4000);
    // While a handle lives, the mutex is held: a condition variable can wait on it.
    std::condition_variable cv;
    bool ready = false;
    std::thread setter([&] {
        auto h = guarded.lock();
        h->push_back(-1);
        ready = true;
        cv.notify_all();
    });
    {
        auto h = guarded.lock();
        cv.wait(h.lock(), [&] { return ready; });
        CHECK(h->back() == -1);
    }
    setter.join();
}
