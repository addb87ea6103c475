// NAME
//   base64_reader.hpp - decode base64 body text and note what readers disagree on
// SUMMARY
//   Decoders agree on clean base64 and on a missing final padding; they
//   part ways on characters outside the alphabet (skipped by most, an
//   early end for some) and on data after a '=' pad (dropped by some,
//   decoded with the quantum restarted by others, shifted by a few).
//   This decoder skips line breaks and blanks, counts every other
//   character outside the alphabet (and skips it), and restarts the
//   quantum after padding, so the text "Zm9v\nYmFy" and the text
//   "Zm8=\nYmFy" both decode to every byte they hold; it reports the
//   junk and the data after padding, which the walker treats as
//   ambiguous (a reader that stops there sees other bytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace icapm {

// Base64Anomalies - what other decoders would read differently.
struct Base64Anomalies {
    std::uint64_t junk = 0;       // characters outside the alphabet, blanks excepted
    bool data_after_padding = false; // alphabet characters after a '=' pad
    bool dangling_bits = false;   // the text ended one character into a quantum
};

// Base64Reader - streaming decoder; feed chunks in order, then finish().
class Base64Reader {
public:
    // decode - append the bytes the chunk completes to out.
    void decode(std::string_view in, std::string& out);
    // finish - append the bytes of an unpadded final quantum.
    void finish(std::string& out);
    // anomalies - what was seen so far.
    const Base64Anomalies& anomalies() const noexcept { return seen_; }

private:
    std::size_t flush(char* w);

    std::uint32_t acc_ = 0; // bits of the current quantum, 6 per character
    unsigned count_ = 0;    // characters in the current quantum (0..3)
    bool padded_ = false;   // a '=' ended the last quantum
    Base64Anomalies seen_;
};

} // namespace icapm
