// NAME
//   base64_reader.cpp - decode base64 body text and note what readers disagree on
#include "icap-milter/mime/base64_reader.hpp"

#include <array>

namespace icapm {

namespace {

constexpr std::uint8_t kSkip = 0xfe; // line breaks and blanks
constexpr std::uint8_t kJunk = 0xff; // anything else outside the alphabet
constexpr std::uint8_t kPad = 0xfd;  // '='

// table - character to 6-bit value, or one of the markers above.
constexpr std::array<std::uint8_t, 256> make_table() {
    std::array<std::uint8_t, 256> t{};
    for (auto& v : t) v = kJunk;
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::uint8_t i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = i;
    for (char c : {' ', '\t', '\r', '\n', '\f', '\v'}) t[static_cast<unsigned char>(c)] = kSkip;
    t['='] = kPad;
    return t;
}
constexpr std::array<std::uint8_t, 256> kTable = make_table();

} // namespace

// decode - four characters make three bytes; a pad flushes what there is.
// The output is written through a pointer into room made up front, and a whole
// quantum of alphabet characters is taken at once: one byte at a time
// with push_back cost a third of the MIME walk.
void Base64Reader::decode(std::string_view in, std::string& out) {
    const std::size_t start = out.size();
    // Up to three held characters complete quanta with these: at most
    // 3 bytes per 4 characters of (held + in), plus a flush's 2.
    out.resize(start + (in.size() + 3) / 4 * 3 + 3);
    char* w = out.data() + start;
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    const auto* end = p + in.size();
    while (p < end) {
        if (count_ == 0 && end - p >= 4) {
            const std::uint32_t a = kTable[p[0]], b = kTable[p[1]], c = kTable[p[2]], d = kTable[p[3]];
            if ((a | b | c | d) < 64) { // all four in the alphabet (the markers are >= 0xfd)
                if (padded_) seen_.data_after_padding = true;
                padded_ = false;
                const std::uint32_t q = (a << 18) | (b << 12) | (c << 6) | d;
                *w++ = static_cast<char>((q >> 16) & 0xff);
                *w++ = static_cast<char>((q >> 8) & 0xff);
                *w++ = static_cast<char>(q & 0xff);
                p += 4;
                continue;
            }
        }
        const std::uint8_t v = kTable[*p++];
        if (v < 64) {
            if (padded_) seen_.data_after_padding = true;
            padded_ = false;
            acc_ = (acc_ << 6) | v;
            if (++count_ == 4) {
                *w++ = static_cast<char>((acc_ >> 16) & 0xff);
                *w++ = static_cast<char>((acc_ >> 8) & 0xff);
                *w++ = static_cast<char>(acc_ & 0xff);
                acc_ = 0;
                count_ = 0;
            }
        } else if (v == kPad) {
            w += flush(w);
            padded_ = true;
        } else if (v == kJunk) {
            ++seen_.junk;
        }
    }
    out.resize(static_cast<std::size_t>(w - out.data()));
}

// finish - the end of the text pads an open quantum.
void Base64Reader::finish(std::string& out) {
    char tail[2];
    out.append(tail, flush(tail));
}

// flush - write the bytes an incomplete quantum holds (2 chars: 1, 3
// chars: 2) to w; returns how many.
std::size_t Base64Reader::flush(char* w) {
    std::size_t n = 0;
    if (count_ == 1) seen_.dangling_bits = true;
    if (count_ == 2) {
        w[n++] = static_cast<char>((acc_ >> 4) & 0xff);
    } else if (count_ == 3) {
        w[n++] = static_cast<char>((acc_ >> 10) & 0xff);
        w[n++] = static_cast<char>((acc_ >> 2) & 0xff);
    }
    acc_ = 0;
    count_ = 0;
    return n;
}

} // namespace icapm
