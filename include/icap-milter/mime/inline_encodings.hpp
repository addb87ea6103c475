// NAME
//   inline_encodings.hpp - find uuencode, yEnc and BinHex blocks in text
// SUMMARY
//   InlineExtractor reads the decoded bytes of a text part in chunks
//   (lines may span chunks) and decodes every "begin NNN name" (uuencode),
//   "=ybegin ... name=x" (yEnc) and "(This file must be converted with
//   BinHex 4.0)" block it finds, so that what a mail client or a user's
//   decoder would extract reaches the scanner as a file of its own.
// DESCRIPTION
//   Decoding is lenient like real decoders: uuencode without "end" or
//   with short lines, yEnc without "=yend", BinHex with bad CRCs or a
//   missing closing colon still give their bytes (BinHex: the data fork).
//   Work is linear in the input; at most max_blocks blocks are decoded,
//   and of each block at most max_bytes are kept (the full decoded size
//   is still counted).
// DIAGNOSTICS
//   Never throws on hostile input; a block that decodes to nothing is
//   not reported.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace icapm {

// InlineKind - the encoding of an inline block.
enum class InlineKind { kUuencode, kYenc, kBinHex };

// InlineBlock - one decoded block.
struct InlineBlock {
    InlineKind kind = InlineKind::kUuencode;
    std::string name;        // sanitised file name from the block header
    std::string data;        // decoded bytes, at most max_bytes of them
    std::uint64_t size = 0;  // decoded bytes in all (may exceed data.size())
};

// inline_kind_name - "uuencode", "yenc" or "binhex".
const char* inline_kind_name(InlineKind k);

// sanitise_filename - a file name from a block header, safe to log and
// to hand on: the last path component, printable ASCII only, at most
// 128 bytes; fallback when nothing is left.
std::string sanitise_filename(std::string_view raw, std::string_view fallback);

// InlineExtractor - streaming finder and decoder of inline blocks.
class InlineExtractor {
public:
    using Callback = std::function<void(InlineBlock&&)>;
    // InlineExtractor - report each block to done; bounds per block and count.
    InlineExtractor(std::uint64_t max_bytes, unsigned max_blocks, Callback done);
    // feed - the next bytes of the text.
    void feed(std::string_view chunk);
    // finish - end of text: report an unfinished block.
    void finish();
    // skipped - blocks seen beyond max_blocks (not decoded).
    unsigned skipped() const { return skipped_; }

private:
    enum class State { kText, kUu, kYenc, kBinHexWait, kBinHex };
    void line(std::string_view l, bool continued);
    void text_line(std::string_view l);
    bool start(InlineKind k, std::string_view name);
    void uu_line(std::string_view l);
    void yenc_bytes(std::string_view l);
    void binhex_chars(std::string_view l);
    void binhex_byte(unsigned char b);
    void binhex_out(unsigned char b, std::uint64_t count);
    void emit(unsigned char b, std::uint64_t count = 1);
    void close();

    std::uint64_t max_bytes_;
    unsigned max_blocks_;
    Callback done_;
    State state_ = State::kText;
    std::string line_;          // the current line, at most kMaxLine bytes
    bool line_continued_ = false;
    unsigned blocks_ = 0;
    unsigned skipped_ = 0;
    InlineBlock cur_;
    bool yenc_escape_ = false;
    unsigned binhex_wait_ = 0; // lines seen since the BinHex banner
    // BinHex: 6-bit accumulator, RLE state, header parse.
    std::uint32_t bits_ = 0;
    unsigned nbits_ = 0;
    bool rle_marker_ = false;
    bool have_last_ = false;
    unsigned char last_ = 0;
    std::string bh_header_;     // bytes of the header until it is complete
    std::uint64_t bh_need_ = 0; // header bytes still wanted (0 = unknown)
    bool bh_in_data_ = false;
    std::uint64_t bh_data_left_ = 0;
    bool bh_done_ = false;
};

} // namespace icapm
