// NAME
//   spool.cpp - bounded-memory byte store that spills to a private file
// SUMMARY
//   Content lives in a vector until memory_limit would be exceeded, then
//   in an anonymous temp file: O_TMPFILE where the file system has it,
//   else mkostemp() followed at once by unlink(), so no name is ever left
//   in temp_dir, not even after a crash. Once on disk every append is
//   written through with pwrite() at the end offset, and readers use
//   pread(): nobody depends on the shared file offset, so a dup() of the
//   descriptor (GMime's stream) and several readers can coexist.
// DIAGNOSTICS
//   Creating or writing the file throws std::system_error carrying errno
//   (ENOSPC, EMFILE, ENOENT for a missing temp_dir, ...). A failed append
//   leaves the spool as it was before the call. Readers throw
//   std::system_error on read errors and EIO when the file is shorter
//   than the spool says (someone truncated it behind our back).
#include "icap-milter/mime/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace icapm {

namespace {

// sys_error - std::system_error for the current errno.
std::system_error sys_error(const std::string& what) {
    return std::system_error(errno, std::generic_category(), "spool: " + what);
}

// write_all_at - pwrite every byte, riding out EINTR and short writes.
void write_all_at(int fd, const char* p, std::size_t n, std::uint64_t off) {
    while (n > 0) {
        ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(off));
        if (w < 0) {
            if (errno == EINTR) continue;
            throw sys_error("write to temp file");
        }
        p += w;
        n -= static_cast<std::size_t>(w);
        off += static_cast<std::uint64_t>(w);
    }
}

// make_private_file - an unnamed 0600 file in dir, open read/write.
UniqueFd make_private_file(const std::string& dir) {
    // O_TMPFILE never gives the file a name, so there is no window in
    // which a crash could leave it behind.
    UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
    if (!fd) {
        // Older kernels and some file systems (NFS, overlay setups)
        // refuse O_TMPFILE; anything else is a real error.
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
            throw sys_error("cannot create temp file in " + dir);
        std::string name = dir + "/icap-milter.XXXXXX";
        fd.reset(::mkostemp(name.data(), O_CLOEXEC));
        if (!fd) throw sys_error("cannot create temp file in " + dir);
        if (::unlink(name.c_str()) != 0) throw sys_error("cannot unlink " + name);
    }
    // O_TMPFILE honours the umask; the contract is exactly 0600.
    if (::fchmod(fd.get(), 0600) != 0) throw sys_error("fchmod temp file");
    return fd;
}


// FileSource - pread cursor over the spool's file; borrows the fd.
class FileSource final : public ByteSource {
public:
    FileSource(int fd, std::uint64_t size) : fd_(fd), size_(size) {}

    // read - pread the next bytes; never touches the shared offset.
    std::size_t read(std::span<char> out) override {
        std::uint64_t left = size_ - pos_;
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), left));
        if (want == 0) return 0;
        for (;;) {
            ssize_t r = ::pread(fd_, out.data(), want, static_cast<off_t>(pos_));
            if (r < 0) {
                if (errno == EINTR) continue;
                throw sys_error("read temp file");
            }
            if (r == 0)
                throw std::system_error(EIO, std::generic_category(),
                                        "spool: temp file shorter than expected");
            pos_ += static_cast<std::uint64_t>(r);
            return static_cast<std::size_t>(r);
        }
    }
    // rewind - back to byte 0.
    void rewind() override { pos_ = 0; }
    // size - bytes this cursor yields.
    std::uint64_t size() const override { return size_; }

private:
    int fd_;
    std::uint64_t size_;
    std::uint64_t pos_ = 0;
};

} // namespace

// Spool - empty, in memory; nothing is allocated until the first append.
Spool::Spool(std::string temp_dir, std::size_t memory_limit, std::shared_ptr<MemoryBudget> budget)
    : temp_dir_(std::move(temp_dir)), memory_limit_(memory_limit), budget_(std::move(budget)) {}

// ~Spool - give the budget back; the UniqueFd closes the (nameless) file.
Spool::~Spool() { uncharge(); }

// uncharge - return what this spool holds of the budget.
void Spool::uncharge() noexcept {
    if (budget_ && charged_) budget_->release(charged_);
    charged_ = 0;
}

// append - grow in memory within the limit, else write through to disk.
void Spool::append(std::string_view data) {
    if (data.empty()) return;
    if (!fd_) {
        if (data.size() <= memory_limit_ - mem_.size()) {
            std::size_t need = mem_.size() + data.size();
            bool fits = true;
            if (need > mem_.capacity()) {
                // Grow geometrically for 64 KiB milter chunks, but never
                // reserve past the limit: that memory would be wasted.
                const std::size_t want = std::min(std::max(need, 2 * mem_.capacity()), memory_limit_);
                fits = !budget_ || budget_->try_charge(want - charged_);
                if (fits) {
                    charged_ = want;
                    mem_.reserve(want);
                }
            }
            if (fits) {
                mem_.insert(mem_.end(), data.begin(), data.end());
                size_ += data.size();
                return;
            }
        }
        spill();
    }
    write_all_at(fd_.get(), data.data(), data.size(), size_);
    size_ += data.size();
}

// spill - move the memory content into a fresh private file.
void Spool::spill() {
    UniqueFd fd = make_private_file(temp_dir_);
    write_all_at(fd.get(), mem_.data(), mem_.size(), 0);
    fd_ = std::move(fd);
    std::vector<char>().swap(mem_);
    uncharge();
}

// reader - a cursor over what has been appended so far.
std::unique_ptr<ByteSource> Spool::reader() const {
    if (fd_) return std::make_unique<FileSource>(fd_.get(), size_);
    return std::make_unique<ViewSource>(memory());
}

// clear - forget everything; the file (if any) disappears with its fd.
void Spool::clear() {
    std::vector<char>().swap(mem_);
    uncharge();
    fd_.reset();
    size_ = 0;
}

} // namespace icapm
