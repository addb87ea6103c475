// NAME
//   store.hpp - the quarantine: held messages with a metadata sidecar
// SUMMARY
//   One directory, two files per entry: ID.eml (the message exactly as
//   the milter received it) and ID.json (who, when, why; see
//   QuarantineEntry). ID is "YYYYMMDDTHHMMSSZ-<queue id>-<8 hex>" (UTC),
//   so a directory listing sorted by name is sorted by time and a time
//   filter needs no file to be opened. An entry exists once its sidecar
//   exists: the message is renamed into place first, the sidecar last.
//   Every file is 0600 and written atomically (temp file, fsync, rename,
//   fsync of the directory). Changes to existing entries (remove,
//   release bookkeeping, enforce) hold an flock() on DIR/.lock, so milter
//   threads and icap-milterctl do not race.
//
//   Release loop guard: a released message goes back through the MTA
//   and so through the milter again, with the header
//   kReleaseHeader: release_marker(id). The milter calls
//   claim_release(id, body_digest(message)), which says yes once per
//   release, and only when the body is the quarantined one. The body
//   (everything after the header block, line ends made CRLF, trailing
//   empty lines dropped) is hashed rather than the whole message because
//   the MTA adds Received: headers and may change line ends.
// DIAGNOSTICS
//   Every I/O failure throws std::system_error with errno (ENOSPC, EROFS,
//   EACCES, EFBIG, ...); a failed store() leaves no file behind. IDs are
//   untrusted input: an invalid ID is simply "not found", never a path.
//   list() skips sidecars that vanish while it runs or do not parse.
#pragma once

#include "icap-milter/common/byte_source.hpp"
#include "icap-milter/common/sha256.hpp"
#include "icap-milter/common/unique_fd.hpp"
#include "icap-milter/config/config.hpp"
#include "icap-milter/mime/spool.hpp"
#include "icap-milter/policy/policy.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

// kReleaseHeader - the header a release adds; its value is release_marker(id).
inline constexpr std::string_view kReleaseHeader = "X-Icap-Milter-Released";

// QuarantineRelease - the release bookkeeping of one entry.
struct QuarantineRelease {
    std::int64_t time = 0;         // last release, Unix seconds
    std::vector<std::string> to;   // recipients of the last release
    unsigned count = 0;            // releases so far
    unsigned claimed = 0;          // of those, passed by the milter (claim_release)
};

// QuarantineEntry - the sidecar of one held message. store() fills id,
// size, sha256 and body_sha256 (and time, when 0); the caller the rest.
struct QuarantineEntry {
    std::string id;
    std::int64_t time = 0;                 // when quarantined, Unix seconds (UTC)
    std::string queue_id;                  // MTA queue id, "" = unknown
    std::string job_id;                    // the milter's job id
    std::string client;                    // SMTP client (name [address])
    std::string sender;                    // envelope sender, "" = <>
    std::vector<std::string> recipients;   // envelope recipients
    std::string verdicts;                  // e.g. "1:clean 2:infected(Eicar)"
    std::vector<std::string> viruses;      // names found
    MessageStatus status = MessageStatus::Infected;
    Action action = Action::Reject;        // what happened to the original
    std::uint64_t size = 0;                // message bytes
    std::string sha256;                    // hex, of the whole message
    std::string body_sha256;               // hex, body_digest() of the message
    std::optional<QuarantineRelease> released;
    std::uint64_t disk_bytes = 0;          // not stored: message + sidecar on disk
};

// QuarantineFilter - what list() returns; empty fields match everything.
struct QuarantineFilter {
    std::int64_t since = 0;   // quarantined at or after (Unix seconds)
    std::string virus;        // substring of a virus name (case-insensitive)
    std::string recipient;    // substring of a recipient (case-insensitive)
};

// QuarantineRemoved - what enforce() deleted, for the caller's log.
struct QuarantineRemoved {
    std::vector<std::string> ids;
    std::uint64_t bytes = 0;
};

// QuarantineStats - entries and their bytes on disk.
struct QuarantineStats {
    std::size_t count = 0;
    std::uint64_t bytes = 0;
};

// valid_quarantine_id - exactly the ID pattern (so never '/', "..", empty).
bool valid_quarantine_id(std::string_view id) noexcept;

// release_marker - the kReleaseHeader value a release of id adds.
std::string release_marker(std::string_view id);

// quarantine_json - an entry as its sidecar JSON (indent < 0: one line).
std::string quarantine_json(const QuarantineEntry& e, int indent = 2);

// body_digest - SHA-256 of a message's body in the canonical form above.
Digest body_digest(ByteSource& message);

// QuarantineStore - one quarantine directory (opened once, used by fd).
class QuarantineStore {
public:
    // QuarantineStore - open dir (it must exist); throws std::system_error.
    explicit QuarantineStore(std::string dir);

    // store - keep message with meta; returns the completed entry.
    QuarantineEntry store(const Spool& message, QuarantineEntry meta);
    // store - the same from any byte source (read once, from the start).
    QuarantineEntry store(ByteSource& message, QuarantineEntry meta);

    // list - entries matching filter, oldest first (reads only sidecars).
    std::vector<QuarantineEntry> list(const QuarantineFilter& filter = {}) const;
    // find - one entry; nullopt when absent or id is not an ID.
    std::optional<QuarantineEntry> find(std::string_view id) const;
    // open_message - a reader over the stored message; nullptr when absent.
    std::unique_ptr<ByteSource> open_message(std::string_view id) const;
    // read_message - the whole stored message in memory; nullopt when absent.
    std::optional<std::string> read_message(std::string_view id) const;
    // export_message - copy the stored message to fd; false when absent.
    bool export_message(std::string_view id, int fd) const;
    // remove - delete an entry; false when absent.
    bool remove(std::string_view id);

    // mark_released - record a release to `to` (call it before the
    // re-injection, so the milter can claim it); false when absent.
    bool mark_released(std::string_view id, const std::vector<std::string>& to, std::int64_t now = 0);
    // unmark_released - undo the last mark_released (the re-injection
    // failed); false when there is no unclaimed release.
    bool unmark_released(std::string_view id);
    // claim_release - true once per release of id whose body matches.
    bool claim_release(std::string_view id, const Digest& body);

    // enforce - delete entries older than retention (0 = keep), then the
    // oldest until the total is within max_size bytes (0 = unlimited).
    QuarantineRemoved enforce(std::chrono::seconds retention, std::uint64_t max_size, std::int64_t now = 0);
    // stats - count and bytes of all entries.
    QuarantineStats stats() const;
    // dir - the directory this store writes to.
    const std::string& dir() const noexcept { return dir_; }

private:
    std::string dir_;
    UniqueFd dirfd_;
};

} // namespace icapm
