// NAME
//   self_test.cpp - canary files, the self-test exchange and the trust rules
// SUMMARY
//   Builds the canaries in memory (the zip with a CRC-32 of its own, the
//   PDF with correct xref offsets) or streams them (the large one: a
//   counter-based generator, so rewind() is free and nothing big is
//   held), sends them on an IcapSession and turns the verdicts into a
//   SelfTestResult. The pool runs this on its self-test threads;
//   --check-scanners runs it in the foreground.
// DIAGNOSTICS
//   Failed exchanges are reported in SelfTestResult::error (the session
//   logs its own warning); nothing here throws to the caller.
#include "icap-milter/scan/self_test.hpp"

#include "icap-milter/icap/verdict.hpp"
#include "icap-milter/scan/session.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace icapm {

namespace {

// crc_table - the reflected CRC-32 table (polynomial 0xEDB88320).
constexpr std::array<std::uint32_t, 256> crc_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr auto kCrcTable = crc_table();

// le16 / le32 - append little-endian integers (zip fields).
void le16(std::string& out, std::uint32_t v) {
    out += static_cast<char>(v & 0xff);
    out += static_cast<char>((v >> 8) & 0xff);
}
void le32(std::string& out, std::uint32_t v) {
    le16(out, v & 0xffff);
    le16(out, v >> 16);
}

// ZipEntry - one stored entry's facts for its headers.
struct ZipEntry {
    std::string name;
    std::uint32_t crc = 0;
    std::uint32_t size = 0;
    std::uint32_t offset = 0; // of its local header
};

// kDosTime / kDosDate - 2026-01-01 00:00, a fixed stamp for every entry.
constexpr std::uint32_t kDosTime = 0;
constexpr std::uint32_t kDosDate = ((2026 - 1980) << 9) | (1 << 5) | 1;

// local_header - a zip local file header (stored, no data descriptor).
std::string local_header(const ZipEntry& e) {
    std::string h;
    le32(h, 0x04034b50);
    le16(h, 10); // version needed: 1.0, stored
    le16(h, 0);  // flags
    le16(h, 0);  // method: stored
    le16(h, kDosTime);
    le16(h, kDosDate);
    le32(h, e.crc);
    le32(h, e.size);
    le32(h, e.size);
    le16(h, static_cast<std::uint32_t>(e.name.size()));
    le16(h, 0);
    return h + e.name;
}

// central_entry - a zip central directory record.
std::string central_entry(const ZipEntry& e) {
    std::string h;
    le32(h, 0x02014b50);
    le16(h, 0x0314); // made by: Unix, 2.0
    le16(h, 10);
    le16(h, 0);
    le16(h, 0);
    le16(h, kDosTime);
    le16(h, kDosDate);
    le32(h, e.crc);
    le32(h, e.size);
    le32(h, e.size);
    le16(h, static_cast<std::uint32_t>(e.name.size()));
    le16(h, 0); // extra
    le16(h, 0); // comment
    le16(h, 0); // disk
    le16(h, 0); // internal attributes
    le32(h, 0100644u << 16); // external: a regular file, 0644
    le32(h, e.offset);
    return h + e.name;
}

// end_record - the end of central directory record.
std::string end_record(std::uint32_t entries, std::uint32_t dir_size, std::uint32_t dir_offset) {
    std::string h;
    le32(h, 0x06054b50);
    le16(h, 0);
    le16(h, 0);
    le16(h, entries);
    le16(h, entries);
    le32(h, dir_size);
    le32(h, dir_offset);
    le16(h, 0);
    return h;
}

// splitmix64 - a counter-based mixer: the large canary's generator.
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// payload_bytes - copy payload bytes [from, from + out.size()) into out.
void payload_bytes(std::uint64_t from, std::span<char> out) noexcept {
    std::size_t i = 0;
    while (i < out.size()) {
        const std::uint64_t p = from + i;
        const std::uint64_t block = random_byte_block(p / 8);
        const std::size_t skip = static_cast<std::size_t>(p % 8);
        const std::size_t n = std::min<std::size_t>(8 - skip, out.size() - i);
        for (std::size_t k = 0; k < n; ++k) out[i + k] = static_cast<char>((block >> (8 * (skip + k))) & 0xff);
        i += n;
    }
}

constexpr const char* kPaddingEntry = "icap-milter-selftest-padding.bin";
constexpr const char* kEicarEntry = "eicar.com";

} // namespace

// crc32 - table-driven, reflected, pre- and post-inverted.
std::uint32_t crc32(std::string_view data, std::uint32_t crc) noexcept {
    crc = ~crc;
    for (unsigned char c : data) crc = kCrcTable[(crc ^ c) & 0xff] ^ (crc >> 8);
    return ~crc;
}

// eicar_zip - one stored entry, its central record and the end record.
std::string eicar_zip() {
    ZipEntry e{kEicarEntry, crc32(kEicar), static_cast<std::uint32_t>(kEicar.size()), 0};
    std::string out = local_header(e);
    out.append(kEicar);
    const auto dir_offset = static_cast<std::uint32_t>(out.size());
    const std::string dir = central_entry(e);
    out += dir;
    out += end_record(1, static_cast<std::uint32_t>(dir.size()), dir_offset);
    return out;
}

// eicar_pdf - catalog, page tree, page, and a content stream of EICAR.
std::string eicar_pdf() {
    std::string out = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
    std::vector<std::size_t> offsets;
    auto object = [&](const std::string& body) {
        offsets.push_back(out.size());
        out += fmt::format("{} 0 obj\n{}\nendobj\n", offsets.size(), body);
    };
    object("<< /Type /Catalog /Pages 2 0 R >>");
    object("<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    object("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>");
    object(fmt::format("<< /Length {} >>\nstream\n{}\nendstream", kEicar.size(), kEicar));
    const std::size_t xref = out.size();
    out += fmt::format("xref\n0 {}\n0000000000 65535 f \n", offsets.size() + 1);
    for (std::size_t o : offsets) out += fmt::format("{:010} 00000 n \n", o);
    out += fmt::format("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{}\n%%EOF\n", offsets.size() + 1, xref);
    return out;
}

// random_byte_block - splitmix64 of the block number.
std::uint64_t random_byte_block(std::uint64_t i) noexcept { return splitmix64(i ^ 0x1ca9'0000'5e1f'7e57ull); }

// LargeCanary - lay out prefix, payload and suffix; CRC the payload for a zip.
LargeCanary::LargeCanary(std::uint64_t size, bool as_zip, const std::atomic<bool>* stop) : stop_(stop) {
    const std::uint64_t zip_overhead = 2 * 30 + 2 * 46 + 22 + 2 * std::strlen(kPaddingEntry) +
                                       2 * std::strlen(kEicarEntry) + kEicar.size();
    if (as_zip && size >= zip_overhead + 1024 && size < 0xFFFF0000ull) {
        zipped_ = true;
        payload_ = size - zip_overhead;
        ZipEntry pad{kPaddingEntry, 0, static_cast<std::uint32_t>(payload_), 0};
        std::array<char, 65536> buf;
        std::uint32_t crc = 0;
        for (std::uint64_t at = 0; at < payload_;) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), payload_ - at));
            payload_bytes(at, std::span<char>(buf.data(), n));
            crc = crc32(std::string_view(buf.data(), n), crc);
            at += n;
        }
        pad.crc = crc;
        prefix_ = local_header(pad);
        ZipEntry eicar{kEicarEntry, crc32(kEicar), static_cast<std::uint32_t>(kEicar.size()),
                       static_cast<std::uint32_t>(prefix_.size() + payload_)};
        suffix_ = local_header(eicar);
        suffix_.append(kEicar);
        const auto dir_offset = static_cast<std::uint32_t>(prefix_.size() + payload_ + suffix_.size());
        const std::string dir = central_entry(pad) + central_entry(eicar);
        suffix_ += dir;
        suffix_ += end_record(2, static_cast<std::uint32_t>(dir.size()), dir_offset);
    } else {
        suffix_ = std::string(kEicar);
        payload_ = size > suffix_.size() ? size - suffix_.size() : 0;
    }
}

// read - the next bytes of prefix, payload or suffix.
std::size_t LargeCanary::read(std::span<char> out) {
    if (stop_ && stop_->load()) throw std::system_error(ECANCELED, std::generic_category(), "self-test stopped");
    std::size_t done = 0;
    while (done < out.size() && pos_ < size()) {
        std::span<char> rest = out.subspan(done);
        std::size_t n;
        if (pos_ < prefix_.size()) {
            n = std::min<std::size_t>(rest.size(), prefix_.size() - pos_);
            std::memcpy(rest.data(), prefix_.data() + pos_, n);
        } else if (pos_ < prefix_.size() + payload_) {
            const std::uint64_t at = pos_ - prefix_.size();
            n = static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), payload_ - at));
            payload_bytes(at, rest.first(n));
        } else {
            const std::uint64_t at = pos_ - prefix_.size() - payload_;
            n = static_cast<std::size_t>(std::min<std::uint64_t>(rest.size(), suffix_.size() - at));
            std::memcpy(rest.data(), suffix_.data() + at, n);
        }
        pos_ += n;
        done += n;
    }
    return done;
}

namespace {


// elapsed_ms - milliseconds since t.
long long elapsed_ms(Deadline t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t).count();
}


} // namespace

// small_canary_max - the largest of the three small canaries.
std::uint64_t small_canary_max() {
    static const std::uint64_t n = std::max({kEicar.size(), eicar_zip().size(), eicar_pdf().size()});
    return n;
}

// run_self_test - small canaries, then the large one halving on misses.
SelfTestResult run_self_test(IcapSession& session, const SelfTestSettings& settings, bool with_large,
                             const std::atomic<bool>* stop) {
    SelfTestResult r;
    const auto t0 = SteadyClock::now();
    r.large_max = settings.large_size;
    auto send = [&](const char* label, const char* file, ByteSource& data) {
        if (stop && stop->load()) {
            r.error = "self-test stopped";
            return CanaryOutcome::NotDone;
        }
        const auto c0 = SteadyClock::now();
        ScanRequest req{file, fmt::format("self-test-{}", label), Deadline::max(), stop};
        Verdict v = session.scan(req, data);
        CanaryResult c;
        c.name = label;
        c.size = data.size();
        c.ms = elapsed_ms(c0);
        switch (v.kind) {
        case VerdictKind::Infected:
            c.outcome = CanaryOutcome::Flagged;
            c.detail = fmt::format("{}", fmt::join(v.threats, ", "));
            break;
        case VerdictKind::Clean:
            c.outcome = CanaryOutcome::Missed;
            c.detail = fmt::format("not detected (ICAP {})", v.icap_status);
            break;
        case VerdictKind::Unscannable:
            c.outcome = CanaryOutcome::Missed;
            c.detail = "unscannable: " + v.reason;
            break;
        case VerdictKind::Error:
            c.outcome = CanaryOutcome::NotDone;
            c.detail = v.reason;
            r.error = fmt::format("{} canary: {}", label, v.reason);
            break;
        }
        if (!v.istag.empty()) r.istag = v.istag;
        r.canaries.push_back(c);
        return c.outcome;
    };
    const std::string zip_bytes = eicar_zip(), pdf_bytes = eicar_pdf();
    ViewSource plain{kEicar}, zip{zip_bytes}, pdf{pdf_bytes};
    CanaryOutcome o;
    if ((o = send("eicar", kCanaryEicarName, plain)) == CanaryOutcome::NotDone) return r;
    r.eicar = o == CanaryOutcome::Flagged;
    if ((o = send("zip", kCanaryZipName, zip)) == CanaryOutcome::NotDone) return r;
    r.zip = o == CanaryOutcome::Flagged;
    if ((o = send("pdf", kCanaryPdfName, pdf)) == CanaryOutcome::NotDone) return r;
    r.pdf = o == CanaryOutcome::Flagged;
    if (with_large && r.eicar) {
        r.large_run = true;
        const std::uint64_t floor = std::max<std::uint64_t>(settings.large_floor, 4096);
        for (std::uint64_t size = std::max<std::uint64_t>(settings.large_size, 4096);; size /= 2) {
            LargeCanary large(size, r.zip, stop);
            r.large_zipped = large.zipped();
            o = send("large", kCanaryLargeName, large);
            if (o == CanaryOutcome::NotDone) return r;
            if (o == CanaryOutcome::Flagged) {
                r.large_flagged = size;
                break;
            }
            if (size / 2 < floor) break;
        }
    }
    r.complete = true;
    r.ms = elapsed_ms(t0);
    settle_trust(r);
    return r;
}

// settle_trust - nothing without plain EICAR; else the largest canary flagged.
void settle_trust(SelfTestResult& r) {
    if (!r.eicar) {
        r.trusted_size = 0;
        return;
    }
    r.trusted_size = std::max(small_canary_max(), r.large_flagged);
}

// keep_large - carry the large canary's findings into a small re-test.
void keep_large(SelfTestResult& fresh, const SelfTestResult& old) {
    fresh.large_run = old.large_run;
    fresh.large_zipped = old.large_zipped;
    fresh.large_flagged = old.large_flagged;
    fresh.large_max = old.large_max;
    settle_trust(fresh);
}

// trusts - the trust rules, in one place.
bool trusts(const SelfTestResult& r, const PartInfo& part) noexcept {
    if (!r.complete || !r.eicar) return false;
    if (part.kind == ContentClass::Archive && !r.zip) return false;
    if (part.kind == ContentClass::Document && !r.pdf) return false;
    return part.size <= r.trusted_size;
}

// misses - the canaries missed, in words.
std::vector<std::string> SelfTestResult::misses() const {
    std::vector<std::string> out;
    if (!eicar) out.push_back("eicar (the plain EICAR test file)");
    if (!zip) out.push_back("zip (archives)");
    if (!pdf) out.push_back("pdf (documents)");
    if (large_run && large_flagged < large_max)
        out.push_back(fmt::format("large objects over {} bytes", trusted_size));
    return out;
}

// summary - one phrase for logs, statistics and status.
std::string SelfTestResult::summary() const {
    if (!complete) return "not done" + (error.empty() ? std::string() : " (" + error + ")");
    if (!eicar) return "missed the EICAR test file: no mail";
    auto m = misses();
    if (m.empty()) return fmt::format("passed (trusted up to {} bytes)", trusted_size);
    return fmt::format("misses {} (trusted up to {} bytes)", fmt::join(m, ", "), trusted_size);
}

// cicap_fix - c-icap settings for each kind of miss.
std::string cicap_fix(const SelfTestResult& r) {
    std::vector<std::string> fix;
    if (!r.eicar)
        fix.push_back("make the service scan at all: virus_scan.ScanFileTypes must list TEXT DATA (and EXECUTABLE "
                      "ARCHIVE DOCUMENT), an engine (clamd_mod or clamav_mod) must be loaded with signatures that "
                      "detect EICAR");
    if (r.eicar && !r.zip)
        fix.push_back("add ARCHIVE to virus_scan.ScanFileTypes and let the engine unpack archives");
    if (r.eicar && !r.pdf)
        fix.push_back("add DOCUMENT to virus_scan.ScanFileTypes (Debian's list leaves PDF out, and the avscan "
                      "alias does not change that)");
    if (r.eicar && r.large_run && r.large_flagged < r.large_max)
        fix.push_back(fmt::format(
            "raise virus_scan.MaxObjectSize to at least MaxScanSize ({} bytes) or scan through a service alias "
            "with sizelimit=off (ServiceAlias avscan virus_scan?allow204=on&sizelimit=off&mode=simple), set "
            "virus_scan.SendPercentData 0, and check the engine's own limits (clamd MaxFileSize, MaxScanSize, "
            "StreamMaxLength)",
            r.large_max));
    return fmt::format("{}", fmt::join(fix, "; "));
}

// self_test_settings - the pool's self-test settings from the config.
SelfTestSettings self_test_settings(bool enabled, std::uint64_t max_scan_size) noexcept {
    SelfTestSettings s;
    s.enabled = enabled;
    s.large_size = max_scan_size;
    s.large_floor = std::min<std::uint64_t>(1ull << 20, max_scan_size / 8);
    return s;
}

} // namespace icapm
