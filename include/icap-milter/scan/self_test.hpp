// NAME
//   self_test.hpp - canaries that prove a scanner scans, and the trust they earn
// SUMMARY
//   A scanner's 204 means "no change", not "scanned": c-icap answers 204
//   for objects over its MaxObjectSize and for types outside its
//   ScanFileTypes. So each server is sent canaries carrying the EICAR
//   test file: as is, inside a zip, inside a PDF-shaped file, and at the
//   end of a large object (MaxScanSize, halved after each miss down to
//   1 MiB). A canary is flagged when the verdict is Infected; Clean or
//   Unscannable is a miss; Error means the test was not done. The result
//   says which parts the server is trusted with: none if it missed plain
//   EICAR, no archives if it missed the zip, no documents if it missed
//   the PDF, nothing bigger than the largest canary it flagged.
//   Canary requests carry file names starting "icap-milter-selftest-" so
//   scanner admins can recognise and filter them.
// DIAGNOSTICS
//   run_self_test() never throws; an exchange that failed leaves the
//   result incomplete with the reason in error.
#pragma once

#include "icap-milter/common/byte_source.hpp"
#include "icap-milter/net/socket.hpp"
#include "icap-milter/scan/content_class.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace icapm {

class IcapSession;

// kEicar - the 68-byte EICAR anti-virus test file.
inline constexpr std::string_view kEicar =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

// Canary file names, as the scanner sees them in the request URL.
inline constexpr const char* kCanaryEicarName = "icap-milter-selftest-eicar.com";
inline constexpr const char* kCanaryZipName = "icap-milter-selftest-eicar.zip";
inline constexpr const char* kCanaryPdfName = "icap-milter-selftest-eicar.pdf";
inline constexpr const char* kCanaryLargeName = "icap-milter-selftest-large.bin";

// crc32 - the zip / IEEE 802.3 CRC-32 of data, continuing from crc.
std::uint32_t crc32(std::string_view data, std::uint32_t crc = 0) noexcept;
// eicar_zip - a zip archive holding eicar.com as one stored entry.
std::string eicar_zip();
// eicar_pdf - a minimal one-page PDF whose content stream is the EICAR file.
std::string eicar_pdf();

// LargeCanary - size bytes ending with the EICAR file, streamed from a
// generator (never held in memory): pseudo-random bytes then EICAR, or,
// as_zip, a stored zip of a pseudo-random entry followed by an eicar.com
// entry (engines that recognise the EICAR file only as a whole file find
// it there). read() throws std::system_error when *stop becomes true.
class LargeCanary : public ByteSource {
public:
    LargeCanary(std::uint64_t size, bool as_zip, const std::atomic<bool>* stop = nullptr);
    std::size_t read(std::span<char> out) override;
    void rewind() override { pos_ = 0; }
    std::uint64_t size() const override { return prefix_.size() + payload_ + suffix_.size(); }
    bool zipped() const noexcept { return zipped_; }

private:
    std::string prefix_, suffix_; // zip headers (or nothing) / eicar entry and directory (or EICAR)
    std::uint64_t payload_ = 0;   // pseudo-random bytes between them
    std::uint64_t pos_ = 0;
    bool zipped_ = false;
    const std::atomic<bool>* stop_;
};

// random_byte_block - the 8 pseudo-random bytes of block i of a large canary.
std::uint64_t random_byte_block(std::uint64_t i) noexcept;

// SelfTestSettings - ScannerSelfTest and the large canary's sizes.
struct SelfTestSettings {
    bool enabled = false;                    // ScannerSelfTest (the daemon's default is yes)
    std::uint64_t large_size = 25ull << 20;  // MaxScanSize: the first large canary
    std::uint64_t large_floor = 1ull << 20;  // halving stops below this
};

// CanaryOutcome - what a canary's verdict means.
enum class CanaryOutcome { Flagged, Missed, NotDone };

// CanaryResult - one canary sent.
struct CanaryResult {
    std::string name;      // "eicar", "zip", "pdf", "large"
    std::uint64_t size = 0;
    CanaryOutcome outcome = CanaryOutcome::NotDone;
    std::string detail;    // threat, "icap 204", or the error
    long long ms = 0;
};

// SelfTestResult - what one server proved.
struct SelfTestResult {
    bool complete = false;       // every canary got a verdict
    std::string error;           // why not complete
    std::vector<CanaryResult> canaries; // in the order sent
    bool eicar = false, zip = false, pdf = false; // small canaries flagged
    bool large_run = false;      // the large canary was sent
    bool large_zipped = false;   // ... packed in a zip
    std::uint64_t large_flagged = 0; // largest large canary flagged, 0 = none
    std::uint64_t large_max = 0; // the size it started from (MaxScanSize)
    std::uint64_t trusted_size = 0; // largest part this server is trusted with
    std::string istag;           // the ISTag the canaries were answered with
    long long ms = 0;            // time the test took

    // misses - what the server did not flag, e.g. "pdf", "large objects
    // over 3276800 bytes"; empty when everything was flagged.
    std::vector<std::string> misses() const;
    // summary - "passed (trusted up to N bytes)", "missed EICAR", "misses: ...".
    std::string summary() const;
};

// small_canary_max - the size of the biggest small canary.
std::uint64_t small_canary_max();
// run_self_test - send the small canaries (and with_large, the large
// one, halving after each miss) on session; stops at the first Error.
SelfTestResult run_self_test(IcapSession& session, const SelfTestSettings& settings, bool with_large,
                             const std::atomic<bool>* stop = nullptr);
// keep_large - a small re-test (ISTag change) keeps an older large result.
void keep_large(SelfTestResult& fresh, const SelfTestResult& old);
// settle_trust - trusted_size from the flags (called by run_self_test and keep_large).
void settle_trust(SelfTestResult& r);
// trusts - whether r lets the server scan part (plain EICAR flagged, the
// class's canary flagged, size within trusted_size).
bool trusts(const SelfTestResult& r, const PartInfo& part) noexcept;
// cicap_fix - the c-icap settings that cure r's misses ("" when none).
std::string cicap_fix(const SelfTestResult& r);

// self_test_settings - ScannerSelfTest and MaxScanSize as the pool takes
// them: the large canary starts at MaxScanSize and halves down to the
// smaller of 1 MiB and an eighth of it.
SelfTestSettings self_test_settings(bool enabled, std::uint64_t max_scan_size) noexcept;

} // namespace icapm
