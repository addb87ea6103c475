// NAME
//   fuzz_mime.cpp - libFuzzer harness for the spool and the MIME walker
// SUMMARY
//   Every input is a raw message behind one mode byte: bit 0 puts the
//   message spool in a temp file instead of memory, so both GMime stream
//   kinds are exercised; bit 1 sends every part's spool to disk. Small
//   limits make the depth, part-count, size and census paths reachable
//   with small inputs. Each item is read back and its size and hash are
//   checked against what the walker said. Preambles, epilogues and the
//   uuencode, yEnc and BinHex blocks inside text become items too; the
//   seeds (tests/data/mime/*.eml and the adversarial corpus in
//   tests/data/mime/corpus) and mime.dict steer the fuzzer into them, and
//   their items are checked like any other. Bits 2-3 of the mode byte
//   pick ScanWholeMessage (ambiguous, always, never); the boundary,
//   header, base64 and line checks that sort a message into ambiguous or
//   suspect run on every input, and their outcome must be consistent
//   (suspect MIME without a whole-message view has failed closed).
//   Build and run: tests/fuzz/run.sh mime SECONDS.
// DIAGNOSTICS
//   std::runtime_error (GMime could not make a message) is an expected
//   outcome; anything else escaping, a size or hash mismatch, or a
//   sanitizer report is a finding (abort).
#include "icap-milter/common/sha256.hpp"
#include "icap-milter/mime/walker.hpp"

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>
#include <vector>

using namespace icapm;

// LLVMFuzzerInitialize - GMime is initialised once, as main() does.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    mime_init();
    return 0;
}

// LLVMFuzzerTestOneInput - walk one message and verify every item.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::size_t spool_mem = (data[0] & 1) ? 0 : (1u << 20);
    std::string_view raw(reinterpret_cast<const char*>(data) + 1, size - 1);

    WalkLimits lim;
    lim.max_depth = 8;
    lim.max_parts = 40;
    lim.max_scan_size = 16 * 1024;
    lim.memory_limit = (data[0] & 2) ? 0 : 4096;
    lim.total_memory_limit = 32 * 1024;
    // Bits 2-3: the whole-message mode (ambiguous, always, never).
    static constexpr WholeMessage kModes[] = {WholeMessage::Ambiguous, WholeMessage::Always, WholeMessage::Never,
                                              WholeMessage::Always};
    lim.whole_message = kModes[(data[0] >> 2) & 3];

    Spool message(lim.temp_dir, spool_mem);
    for (std::size_t off = 0; off < raw.size(); off += 4096) message.append(raw.substr(off, 4096));

    WalkResult r;
    try {
        r = walk_message(message, lim);
    } catch (const std::runtime_error&) {
        return 0; // not a message at all: the documented outcome
    }
    bool whole = false;
    for (const ScanItem& it : r.items) whole = whole || it.part_id == "0";
    if (r.limit_hit && !whole) std::abort();
    // Suspect MIME without the whole-message view must have failed closed.
    if (!r.suspects.empty() && (lim.whole_message == WholeMessage::Never || !whole)) std::abort();
    if (r.ambiguous() == r.ambiguity().empty()) std::abort();
    if (r.hashable() && (r.ambiguous() || !r.suspects.empty())) std::abort();
    std::vector<char> buf(3000);
    for (const ScanItem& it : r.items) {
        if (it.scannable != static_cast<bool>(it.data)) std::abort();
        if (!it.scannable && it.unscannable_reason.empty()) std::abort();
        if (it.size > lim.max_scan_size && it.scannable) std::abort();
        if (!it.data) continue;
        auto src = it.data->reader();
        Sha256 h;
        std::uint64_t n = 0;
        for (std::size_t got; (got = src->read(buf)) > 0; n += got) h.update({buf.data(), got});
        if (n != it.size) std::abort();
        // The whole-message views carry no hash (no token covers them).
        if (!is_view_id(it.part_id) && h.finish() != it.sha256) std::abort();
    }
    return 0;
}
