// NAME
//   spool.hpp - bounded-memory byte store that spills to a private file
// SUMMARY
//   Bytes are kept in memory up to a limit, then moved to an unlinked
//   0600 temp file in the configured directory. Used for whole messages
//   (milter intake) and for decoded MIME parts (scan items).
// DIAGNOSTICS
//   append() throws std::system_error when the temp file cannot be made
//   or written; the caller turns that into the OnFail action.
#pragma once

#include "icap-milter/common/byte_source.hpp"
#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/mime/memory_budget.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

class Spool {
public:
    // Spool - memory_limit bytes in RAM at most, each of them charged to
    // budget first when there is one (a refused charge spills to the temp
    // file at once); temp files go in temp_dir.
    Spool(std::string temp_dir, std::size_t memory_limit, std::shared_ptr<MemoryBudget> budget = nullptr);
    ~Spool();
    Spool(const Spool&) = delete;
    Spool& operator=(const Spool&) = delete;

    // append - add bytes at the end, spilling to disk past the limit.
    void append(std::string_view data);
    // size - bytes appended so far.
    std::uint64_t size() const { return size_; }
    // on_disk - true once the content lives in the temp file.
    bool on_disk() const { return static_cast<bool>(fd_); }
    // fd - the temp file's descriptor (-1 while in memory). Owned by Spool.
    int fd() const { return fd_.get(); }
    // memory - the in-memory content (empty once on disk).
    std::string_view memory() const { return {mem_.data(), mem_.size()}; }
    // reader - an independent cursor (pread based, so several readers may
    // run concurrently from different threads once appending is over).
    // It covers the bytes appended so far and must not outlive the Spool
    // (scan items share their Spool through a shared_ptr for that).
    std::unique_ptr<ByteSource> reader() const;
    // clear - drop all content and the temp file; ready for reuse.
    void clear();

private:
    void spill();
    void uncharge() noexcept;

    std::string temp_dir_;
    std::size_t memory_limit_;
    std::shared_ptr<MemoryBudget> budget_;
    std::uint64_t charged_ = 0; // bytes of budget_ this spool holds
    std::vector<char> mem_;
    UniqueFd fd_;
    std::uint64_t size_ = 0;
};

} // namespace icapm
