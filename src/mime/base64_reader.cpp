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
void Base64Reader::decode(std::string_view in, std::string& out) {
    out.reserve(out.size() + in.size() / 4 * 3 + 3);
    for (char ch : in) {
        std::uint8_t v = kTable[static_cast<unsigned char>(ch)];
        if (v < 64) {
            if (padded_) seen_.data_after_padding = true;
            padded_ = false;
            acc_ = (acc_ << 6) | v;
            if (++count_ == 4) {
                out.push_back(static_cast<char>((acc_ >> 16) & 0xff));
                out.push_back(static_cast<char>((acc_ >> 8) & 0xff));
                out.push_back(static_cast<char>(acc_ & 0xff));
                acc_ = 0;
                count_ = 0;
            }
        } else if (v == kPad) {
            flush(out);
            padded_ = true;
        } else if (v == kJunk) {
            ++seen_.junk;
        }
    }
}

// finish - the end of the text pads an open quantum.
void Base64Reader::finish(std::string& out) { flush(out); }

// flush - the bytes an incomplete quantum holds (2 chars: 1, 3 chars: 2).
void Base64Reader::flush(std::string& out) {
    if (count_ == 1) seen_.dangling_bits = true;
    if (count_ == 2) {
        out.push_back(static_cast<char>((acc_ >> 4) & 0xff));
    } else if (count_ == 3) {
        out.push_back(static_cast<char>((acc_ >> 10) & 0xff));
        out.push_back(static_cast<char>((acc_ >> 2) & 0xff));
    }
    acc_ = 0;
    count_ = 0;
}

} // namespace icapm
