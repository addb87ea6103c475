// NAME
//   test_spool.cpp - unit tests of the bounded-memory Spool
// SUMMARY
//   Memory mode, spilling past the limit, the private unlinked 0600 file,
//   pread readers that ignore the shared offset and run concurrently,
//   clear(), and errors surfacing as std::system_error.
#include "icap-milter/common/sha256.hpp"
#include "icap-milter/mime/spool.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace icapm;

namespace {

// read_all - drain a ByteSource with the given chunk size.
std::string read_all(ByteSource& src, std::size_t chunk = 4096) {
    std::string out;
    std::vector<char> buf(chunk);
    for (std::size_t n; (n = src.read(buf)) > 0;) out.append(buf.data(), n);
    return out;
}

// pattern - n deterministic bytes covering all byte values.
std::string pattern(std::size_t n, unsigned seed = 1) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7 + (i >> 8)) & 0xff);
    return s;
}

// TempDir - a fresh private directory, removed (with any leftovers) at the end.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/icapm-spool-test-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        for (const auto& n : names()) ::unlink((path + "/" + n).c_str());
        ::rmdir(path.c_str());
    }
    // names - directory entries other than . and ..
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        if (DIR* d = ::opendir(path.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string n = e->d_name;
                if (n != "." && n != "..") out.push_back(n);
            }
            ::closedir(d);
        }
        return out;
    }
};

} // namespace

TEST_CASE("spool: small content stays in memory") {
    Spool s("/nonexistent-dir-never-touched", 1024);
    s.append("Subject: hi\r\n");
    s.append("");
    s.append("\r\nbody\r\n");
    CHECK_FALSE(s.on_disk());
    CHECK(s.fd() == -1);
    CHECK(s.size() == 21);
    CHECK(s.memory() == "Subject: hi\r\n\r\nbody\r\n");
    auto r = s.reader();
    CHECK(r->size() == 21);
    CHECK(read_all(*r, 3) == "Subject: hi\r\n\r\nbody\r\n");
    CHECK(read_all(*r) == ""); // at end: read returns 0
    r->rewind();
    CHECK(read_all(*r) == "Subject: hi\r\n\r\nbody\r\n");
}

TEST_CASE("spool: exactly the limit stays in memory, one byte more spills") {
    TempDir dir;
    Spool s(dir.path, 100);
    std::string a = pattern(100);
    s.append(a);
    CHECK_FALSE(s.on_disk());
    s.append("x");
    CHECK(s.on_disk());
    CHECK(s.fd() >= 0);
    CHECK(s.memory().empty());
    CHECK(s.size() == 101);
    auto r = s.reader();
    CHECK(read_all(*r, 7) == a + "x");
}

TEST_CASE("spool: spill keeps order across many chunks and writes through") {
    TempDir dir;
    Spool s(dir.path, 64 * 1024);
    std::string expect;
    // milter-like: headers in small pieces, then 64 KiB body chunks
    for (int i = 0; i < 50; ++i) {
        std::string h = "X-Header-" + std::to_string(i) + ": value\r\n";
        s.append(h);
        expect += h;
    }
    for (unsigned i = 0; i < 40; ++i) {
        std::string c = pattern(64 * 1024, i);
        s.append(c);
        expect += c;
    }
    REQUIRE(s.on_disk());
    CHECK(s.size() == expect.size());
    // write-through: the file already holds every byte, nothing is buffered
    struct stat st{};
    REQUIRE(::fstat(s.fd(), &st) == 0);
    CHECK(static_cast<std::uint64_t>(st.st_size) == expect.size());
    auto r = s.reader();
    CHECK(read_all(*r, 65536) == expect);
}

TEST_CASE("spool: temp file is private: mode 0600, no name in temp_dir") {
    TempDir dir;
    ::mode_t old = ::umask(0); // a lax umask must not widen the mode
    Spool s(dir.path, 0);
    s.append("secret mail");
    ::umask(old);
    REQUIRE(s.on_disk());
    struct stat st{};
    REQUIRE(::fstat(s.fd(), &st) == 0);
    CHECK(S_ISREG(st.st_mode));
    CHECK((st.st_mode & 07777) == 0600);
    CHECK(st.st_nlink == 0);
    CHECK(dir.names().empty());
    // close-on-exec, so no child process inherits mail content
    CHECK((::fcntl(s.fd(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("spool: readers use pread and ignore the shared file offset") {
    TempDir dir;
    Spool s(dir.path, 10);
    s.append("0123456789abcdef");
    REQUIRE(s.on_disk());
    // A dup shares the offset (this is what GMime's stream gets).
    UniqueFd other(::dup(s.fd()));
    REQUIRE(other);
    REQUIRE(::lseek(other.get(), 5, SEEK_SET) == 5);
    s.append("XYZ");
    auto r = s.reader();
    CHECK(read_all(*r, 4) == "0123456789abcdefXYZ");
    REQUIRE(::lseek(other.get(), 0, SEEK_END) > 0);
    r->rewind();
    CHECK(read_all(*r, 5) == "0123456789abcdefXYZ");
}

TEST_CASE("spool: several readers at once from different threads") {
    TempDir dir;
    Spool disk(dir.path, 64 * 1024);
    Spool mem(dir.path, 8u << 20);
    std::string content = pattern(3u << 20, 9);
    for (std::size_t off = 0; off < content.size(); off += 65536) {
        disk.append(std::string_view(content).substr(off, 65536));
        mem.append(std::string_view(content).substr(off, 65536));
    }
    REQUIRE(disk.on_disk());
    REQUIRE_FALSE(mem.on_disk());
    Sha256 h;
    h.update(content);
    Digest expect = h.finish();

    for (const Spool* sp : {&disk, &mem}) {
        constexpr int kThreads = 8;
        std::vector<Digest> got(kThreads);
        std::vector<std::uint64_t> sizes(kThreads);
        std::vector<std::thread> threads;
        for (int t = 0; t < kThreads; ++t) {
            threads.emplace_back([&, t] {
                auto r = sp->reader();
                std::vector<char> buf(1000 + 777 * t); // different chunking per thread
                Sha256 th;
                for (std::size_t n; (n = r->read(buf)) > 0;) {
                    th.update({buf.data(), n});
                    sizes[t] += n;
                }
                got[t] = th.finish();
            });
        }
        for (auto& th : threads) th.join();
        for (int t = 0; t < kThreads; ++t) {
            CHECK(sizes[t] == content.size());
            CHECK(got[t] == expect);
        }
    }
}

TEST_CASE("spool: clear drops the file and allows reuse in memory") {
    TempDir dir;
    Spool s(dir.path, 16);
    s.append(pattern(100));
    REQUIRE(s.on_disk());
    int old_fd = s.fd();
    s.clear();
    CHECK(s.size() == 0);
    CHECK_FALSE(s.on_disk());
    CHECK(s.fd() == -1);
    CHECK(s.memory().empty());
    errno = 0;
    CHECK(::fcntl(old_fd, F_GETFD) == -1); // the descriptor was closed
    CHECK(errno == EBADF);
    auto empty = s.reader();
    CHECK(empty->size() == 0);
    CHECK(read_all(*empty) == "");
    s.append("again");
    CHECK_FALSE(s.on_disk());
    CHECK(s.memory() == "again");
    CHECK(dir.names().empty());
}

TEST_CASE("spool: a missing temp_dir is a system_error and the spool is unchanged") {
    Spool s("/nonexistent/icap-milter-spool-test", 4);
    s.append("abc");
    bool thrown = false;
    try {
        s.append("defgh");
    } catch (const std::system_error& e) {
        thrown = true;
        CHECK(e.code().value() == ENOENT);
    }
    CHECK(thrown);
    CHECK(s.size() == 3);
    CHECK_FALSE(s.on_disk());
    CHECK(s.memory() == "abc");
}

TEST_CASE("spool: a reader of a truncated file reports EIO, not short data") {
    TempDir dir;
    Spool s(dir.path, 0);
    s.append(pattern(5000));
    REQUIRE(::ftruncate(s.fd(), 1000) == 0);
    auto r = s.reader();
    std::vector<char> buf(4096);
    bool thrown = false;
    try {
        while (r->read(buf) > 0) {
        }
    } catch (const std::system_error& e) {
        thrown = true;
        CHECK(e.code().value() == EIO);
    }
    CHECK(thrown);
}

TEST_CASE("spool: a shared memory budget sends spools to disk once it is spent") {
    TempDir dir;
    auto budget = std::make_shared<MemoryBudget>(256 * 1024);
    const std::string chunk(64 * 1024, 'x');
    {
        Spool a(dir.path, 1u << 20, budget);
        for (int i = 0; i < 3; ++i) a.append(chunk); // 192 KiB, reserved 256 KiB at most
        CHECK_FALSE(a.on_disk());
        CHECK(budget->used() > 0);
        CHECK(budget->used() <= budget->limit());
        Spool b(dir.path, 1u << 20, budget);
        b.append(chunk);
        b.append(chunk);
        // The first spool holds the budget: the second one spills.
        CHECK(b.on_disk());
        CHECK(b.size() == 2 * chunk.size());
        CHECK(read_all(*b.reader()) == chunk + chunk);
        a.append(chunk);
        a.append(chunk); // past the budget: a spills too, and keeps every byte
        CHECK(a.on_disk());
        CHECK(a.size() == 5 * chunk.size());
        CHECK(budget->used() == 0); // spilling gives the RAM back
        Spool c(dir.path, 1u << 20, budget);
        c.append(chunk);
        CHECK_FALSE(c.on_disk()); // ... so the next spool may use it
    }
    CHECK(budget->used() == 0); // and so does destruction
}

TEST_CASE("spool: a zero budget spools everything to disk; no budget means only the per-spool limit") {
    TempDir dir;
    auto none = std::make_shared<MemoryBudget>(0);
    Spool a(dir.path, 1u << 20, none);
    a.append("hello");
    CHECK(a.on_disk());
    Spool b(dir.path, 1u << 20);
    b.append("hello");
    CHECK_FALSE(b.on_disk());
}

TEST_CASE("memory budget: concurrent charges never pass the limit") {
    MemoryBudget budget(1000);
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (budget.try_charge(7)) granted.fetch_add(1);
        });
    for (auto& th : threads) th.join();
    CHECK(granted.load() == 1000 / 7);
    CHECK(budget.used() == 7u * (1000 / 7));
    budget.release(budget.used());
    CHECK(budget.used() == 0);
    budget.set_limit(10);
    CHECK_FALSE(budget.try_charge(11));
    CHECK(budget.try_charge(10));
}
