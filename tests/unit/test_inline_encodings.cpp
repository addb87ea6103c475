// NAME
//   test_inline_encodings.cpp - unit tests of the inline block decoders
// SUMMARY
//   Tiny encoders written here (uuencode, yEnc, BinHex 4.0 with its RLE
//   and CRC) produce blocks that InlineExtractor must decode back to the
//   same bytes, fed whole and byte by byte; lenient cases (no "end", no
//   "=yend", short lines, bad CRCs, no closing colon), file name
//   sanitising, the block limit, the size bound and hostile input.
#include "icap-milter/mime/inline_encodings.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <vector>

using namespace icapm;

namespace {

const std::string kEicar =
    "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

// all_bytes - every byte value, a few times over.
std::string all_bytes() {
    std::string s;
    for (int r = 0; r < 3; ++r)
        for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
    return s;
}

// uu_char - one 6-bit value as a uuencode character ("`" for zero).
char uu_char(unsigned v) { return v == 0 ? '`' : static_cast<char>(32 + v); }

// uuencode - a complete "begin 644 name" ... "end" block.
std::string uuencode(const std::string& data, const std::string& name, bool with_end = true) {
    std::string out = "begin 644 " + name + "\n";
    for (std::size_t off = 0; off < data.size(); off += 45) {
        std::size_t n = std::min<std::size_t>(45, data.size() - off);
        out += uu_char(static_cast<unsigned>(n));
        for (std::size_t i = 0; i < n; i += 3) {
            unsigned char b[3] = {0, 0, 0};
            for (std::size_t k = 0; k < 3 && i + k < n; ++k)
                b[k] = static_cast<unsigned char>(data[off + i + k]);
            out += uu_char(b[0] >> 2);
            out += uu_char(((b[0] << 4) | (b[1] >> 4)) & 63);
            out += uu_char(((b[1] << 2) | (b[2] >> 6)) & 63);
            out += uu_char(b[2] & 63);
        }
        out += "\n";
    }
    if (with_end) out += "`\nend\n";
    return out;
}

// yenc - a "=ybegin" ... "=yend" block, 128 characters a line.
std::string yenc(const std::string& data, const std::string& name, bool with_end = true) {
    std::string out = "=ybegin line=128 size=" + std::to_string(data.size()) + " name=" + name + "\n";
    std::size_t col = 0;
    for (char ch : data) {
        auto c = static_cast<unsigned char>(static_cast<unsigned char>(ch) + 42);
        if (c == 0 || c == '\n' || c == '\r' || c == '=') {
            out += '=';
            c = static_cast<unsigned char>(c + 64);
            ++col;
        }
        out += static_cast<char>(c);
        if (++col >= 128) {
            out += "\n";
            col = 0;
        }
    }
    if (col) out += "\n";
    if (with_end) out += "=yend size=" + std::to_string(data.size()) + "\n";
    return out;
}

// crc16 - the CCITT CRC BinHex uses (poly 0x1021, initial 0).
std::uint16_t crc16(const std::string& s) {
    std::uint16_t crc = 0;
    for (char ch : s) {
        crc ^= static_cast<std::uint16_t>(static_cast<unsigned char>(ch) << 8);
        for (int i = 0; i < 8; ++i)
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

// be - n big-endian bytes of v.
std::string be(std::uint32_t v, int n) {
    std::string s;
    for (int i = n - 1; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}

// binhex - a BinHex 4.0 file: header, data fork, empty resource fork,
// run-length coded, 6-bit encoded, 64 characters a line.
std::string binhex(const std::string& data, const std::string& name, bool bad_crc = false,
                   bool closing_colon = true) {
    std::string hdr = std::string(1, static_cast<char>(name.size())) + name + std::string(1, '\0') +
                      "TEXTttxt" + be(0, 2) + be(static_cast<std::uint32_t>(data.size()), 4) + be(0, 4);
    std::string raw = hdr + be(crc16(hdr + be(0, 2)), 2);
    raw += data + be(static_cast<std::uint16_t>(crc16(data + be(0, 2)) ^ (bad_crc ? 1 : 0)), 2);
    raw += be(0, 2); // resource fork CRC (empty fork)
    // Run-length code: runs of 3+ equal bytes become b 0x90 n; 0x90 itself is 0x90 0x00.
    std::string rle;
    for (std::size_t i = 0; i < raw.size();) {
        std::size_t j = i;
        while (j < raw.size() && raw[j] == raw[i] && j - i < 255) ++j;
        std::size_t run = j - i;
        auto b = static_cast<unsigned char>(raw[i]);
        if (b == 0x90) {
            rle += "\x90";
            rle += '\0';
            i += 1;
            continue;
        }
        if (run >= 3) {
            rle += static_cast<char>(b);
            rle += static_cast<char>(0x90);
            rle += static_cast<char>(run);
            i = j;
        } else {
            rle += static_cast<char>(b);
            i += 1;
        }
    }
    static const std::string alphabet =
        "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";
    std::string chars;
    std::uint32_t bits = 0;
    int nbits = 0;
    for (char ch : rle) {
        bits = (bits << 8) | static_cast<unsigned char>(ch);
        nbits += 8;
        while (nbits >= 6) {
            nbits -= 6;
            chars += alphabet[(bits >> nbits) & 63];
        }
    }
    if (nbits > 0) chars += alphabet[(bits << (6 - nbits)) & 63];
    std::string out = "(This file must be converted with BinHex 4.0)\n:";
    std::size_t col = 1;
    for (char c : chars) {
        out += c;
        if (++col == 64) {
            out += "\n";
            col = 0;
        }
    }
    if (closing_colon) out += ":";
    out += "\n";
    return out;
}

// extract - run the extractor over text in chunks of step bytes.
std::vector<InlineBlock> extract(const std::string& text, std::size_t step = 0,
                                 std::uint64_t max_bytes = 1u << 20, unsigned max_blocks = 16,
                                 unsigned* skipped = nullptr) {
    std::vector<InlineBlock> out;
    InlineExtractor ex(max_bytes, max_blocks, [&out](InlineBlock&& b) { out.push_back(std::move(b)); });
    if (step == 0) step = text.size() ? text.size() : 1;
    for (std::size_t off = 0; off < text.size(); off += step) ex.feed(std::string_view(text).substr(off, step));
    ex.finish();
    if (skipped) *skipped = ex.skipped();
    return out;
}

} // namespace

TEST_CASE("inline encodings: uuencode round trip, whole and byte by byte") {
    for (const std::string& data : {kEicar, all_bytes(), std::string("a"), std::string("ab")}) {
        std::string text = "Hello,\nhere it is:\n\n" + uuencode(data, "eicar.com") + "\nbye\n";
        for (std::size_t step : {std::size_t(0), std::size_t(1), std::size_t(7)}) {
            auto b = extract(text, step);
            REQUIRE(b.size() == 1);
            CHECK(b[0].kind == InlineKind::kUuencode);
            CHECK(b[0].name == "eicar.com");
            CHECK(b[0].data == data);
            CHECK(b[0].size == data.size());
        }
    }
}

TEST_CASE("inline encodings: uuencode without end, with CRLF, and with short lines") {
    auto b = extract(uuencode(kEicar, "x.com", false));
    REQUIRE(b.size() == 1);
    CHECK(b[0].data == kEicar);

    std::string crlf;
    for (char c : uuencode(kEicar, "x.com")) crlf += c == '\n' ? std::string("\r\n") : std::string(1, c);
    b = extract(crlf);
    REQUIRE(b.size() == 1);
    CHECK(b[0].data == kEicar);

    // Trailing "`" characters stripped (as some mailers do): zero bits.
    std::string text = uuencode(std::string(3, '\0'), "z.bin");
    std::string stripped = text;
    stripped.replace(stripped.find("````"), 4, "");
    b = extract(stripped);
    REQUIRE(b.size() == 1);
    CHECK(b[0].data == std::string(3, '\0'));
}

TEST_CASE("inline encodings: yEnc round trip, with and without =yend") {
    for (bool end : {true, false}) {
        for (const std::string& data : {kEicar, all_bytes()}) {
            std::string text = "see below\n" + yenc(data, "eicar file.com", end) + "thanks\n";
            for (std::size_t step : {std::size_t(0), std::size_t(1), std::size_t(100)}) {
                auto b = extract(text, step);
                REQUIRE(b.size() == 1);
                CHECK(b[0].kind == InlineKind::kYenc);
                CHECK(b[0].name == "eicar_file.com");
                if (end) {
                    CHECK(b[0].data == data);
                } else {
                    // Without =yend the text after it is read as data too.
                    CHECK(b[0].data.substr(0, data.size()) == data);
                }
            }
        }
    }
}

TEST_CASE("inline encodings: BinHex 4.0 data fork, RLE and bad CRCs") {
    std::string runs = kEicar + std::string(600, 'A') + std::string(5, '\x90') + "tail";
    for (const std::string& data : {kEicar, all_bytes(), runs}) {
        for (bool bad_crc : {false, true}) {
            std::string text = "Mac file:\n\n" + binhex(data, "eicar.com", bad_crc) + "\n-- \nsig\n";
            for (std::size_t step : {std::size_t(0), std::size_t(1), std::size_t(13)}) {
                auto b = extract(text, step);
                REQUIRE(b.size() == 1);
                CHECK(b[0].kind == InlineKind::kBinHex);
                CHECK(b[0].name == "eicar.com");
                CHECK(b[0].data == data);
                CHECK(b[0].size == data.size());
            }
        }
    }
    // No closing colon: the data fork is still there.
    auto b = extract(binhex(kEicar, "e.com", false, false));
    REQUIRE(b.size() == 1);
    CHECK(b[0].data == kEicar);
}

TEST_CASE("inline encodings: several blocks in one text, in order") {
    std::string text = uuencode("one", "1.txt") + "text\n" + yenc("two", "2.txt") +
                       binhex("three", "3.txt") + uuencode("four", "4.txt");
    auto b = extract(text);
    REQUIRE(b.size() == 4);
    CHECK(b[0].data == "one");
    CHECK(b[1].data == "two");
    CHECK(b[2].data == "three");
    CHECK(b[3].data == "four");
    CHECK(b[3].name == "4.txt");
}

TEST_CASE("inline encodings: file names are sanitised") {
    CHECK(sanitise_filename("../../etc/passwd", "f") == "passwd");
    CHECK(sanitise_filename("C:\\x\\evil.exe", "f") == "evil.exe");
    CHECK(sanitise_filename("a\x01" "b c\x7f", "f") == "a_b_c_");
    CHECK(sanitise_filename("", "fallback.bin") == "fallback.bin");
    CHECK(sanitise_filename("..", "fallback.bin") == "fallback.bin");
    CHECK(sanitise_filename(std::string(1000, 'x'), "f").size() == 128);
    auto b = extract("begin 644\n" + uuencode("x", "").substr(uuencode("x", "").find('\n') + 1));
    REQUIRE(b.size() == 1);
    CHECK(b[0].name == "uuencoded.bin");
}

TEST_CASE("inline encodings: block count and size are bounded") {
    std::string text;
    for (int i = 0; i < 40; ++i) text += uuencode(kEicar, "e" + std::to_string(i) + ".com");
    unsigned skipped = 0;
    auto b = extract(text, 0, 1u << 20, 16, &skipped);
    CHECK(b.size() == 16);
    CHECK(skipped == 24);

    // A run-length bomb: the claimed size is counted, only max_bytes kept.
    std::string big(100000, 'B');
    b = extract(binhex(big, "big.bin"), 0, 1000);
    REQUIRE(b.size() == 1);
    CHECK(b[0].size == big.size());
    CHECK(b[0].data == std::string(1000, 'B'));
}

TEST_CASE("inline encodings: hostile and non-block text gives nothing and does not crash") {
    CHECK(extract("").empty());
    CHECK(extract("begin 644 x\n").empty());
    CHECK(extract("begin 644 x\nend\n").empty());
    CHECK(extract("=ybegin line=128 size=0 name=x\n=yend\n").empty());
    CHECK(extract("(This file must be converted with BinHex 4.0)\n:!!!:\n").empty());
    CHECK(extract("(This file must be converted with BinHex 4.0)\nno colon here\n").empty());
    CHECK(extract("beginning of a sentence\nbegin 64x name\n").empty());
    // Header claims a long name that never comes; truncated mid-header.
    CHECK(extract("(This file must be converted with BinHex 4.0)\n:r").empty());
    // Overlong lines, NULs and binary noise.
    std::string noise = "begin 644 n\nM" + std::string(200000, 'M') + "\n" + std::string(1000, '\0');
    for (int i = 0; i < 5000; ++i) noise += static_cast<char>((i * 7919) & 0xff);
    noise += "=ybegin name=q\n=" + std::string(100000, '=');
    auto b = extract(noise);
    CHECK(b.size() <= 16);
    b = extract(noise, 3);
    CHECK(b.size() <= 16);
}
