// NAME
//   fuzz_icap_response.cpp - libFuzzer harness for the ICAP response parser
// SUMMARY
//   The first input byte picks how the rest is fed to the parser: with
//   the top bit set all at once, else in pieces of 1 + (byte % 64)
//   bytes, so split points and whole-buffer parsing are both exercised.
//   Complete replies then go through the verdict rules and the OPTIONS
//   parser. Limits are set low so the fuzzer reaches them.
//   Build and run: tests/fuzz/run.sh icap_response SECONDS.
#include "icap-milter/icap/options.hpp"
#include "icap-milter/icap/response.hpp"
#include "icap-milter/icap/rules.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace icapm;

// LLVMFuzzerTestOneInput - one parse of one input.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    const std::size_t step = (data[0] & 0x80) ? in.size() : 1 + data[0] % 64;

    ParserLimits lim;
    lim.max_header_bytes = 4096;
    lim.max_header_lines = 40;
    lim.max_encap_bytes = 2048;
    lim.max_chunk_size = 1 << 16;
    lim.max_body = 1 << 18;
    lim.max_trailer_bytes = 512;
    ResponseParser p(lim);
    for (std::size_t pos = 0; pos < in.size(); pos += step) {
        auto s = p.feed(in.substr(pos, step));
        while (s == ResponseParser::State::Continue) s = p.resume();
        if (s == ResponseParser::State::Error) break;
    }
    if (p.state() == ResponseParser::State::Done) {
        const IcapResponse& r = p.response();
        const Digest sent = r.body_sha256;
        Verdict v = classify_respmod(r, SentBody{r.body_length, [sent] { return sent; }, true});
        // A body equal to what was "sent" and no marker must be clean.
        if (r.status == 200 && r.http_status == 200 && find_markers(r).threats.empty() &&
            find_markers(r).policy.empty() && v.kind != VerdictKind::Clean && !find_markers(r).infected)
            __builtin_trap();
        for (const auto& t : v.threats)
            for (char c : t)
                if (c < 0x20 || c > 0x7e) __builtin_trap(); // names reach SMTP replies
        std::string err;
        auto o = parse_server_options(r, &err);
        if (o && o->istag.size() > kMaxIstag) __builtin_trap();
    }
    std::string err;
    (void)parse_encapsulated(in.substr(0, 200), 65536, &err);
    return 0;
}
